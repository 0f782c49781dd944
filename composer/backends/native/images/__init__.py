"""Images for the native backend: the store, the layer extractor and the image sources.

``store.ImageStore`` keeps blobs, layers unpacked once per chain ID, configs
and tags under the state root; ``extract`` unpacks a layer without ever
letting a path leave its directory; ``archive`` loads and saves ``docker
save`` archives and OCI layouts; ``importer`` turns a rootfs tarball into an
image; ``reference`` normalises names the way Docker Hub does.
"""
