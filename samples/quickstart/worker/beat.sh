#!/bin/sh
# Write a heartbeat into the shared volume every second (atomically: temp + rename).
n=0
while true; do
    n=$((n + 1))
    echo "beat $n at $(date -u +%H:%M:%S)" > /var/beats/.latest && mv /var/beats/.latest /var/beats/latest
    sleep 1
done
