#!/usr/bin/env bash
# The curl example of the documented presign page, with the base URL and the token swapped for
# FLARE_URL and FLARE_TOKEN. Nothing else is changed.
set -euo pipefail
curl "$FLARE_URL/api/video/upload/presign" \
  -H "Authorization: Bearer $FLARE_TOKEN" \
  -H "Content-Type: application/json" \
  -d '{
    "videoId": "VIDEO_ID",
    "fileName": "demo.mp4"
  }'
