#!/usr/bin/env bash
# The requests of the hosted Flare docs' curl examples (create a video, list videos, update
# video metadata, update embed settings), sent as those examples send them — the two updates
# with `-d` and no `-X PATCH`, so as POST — to FLARE_URL with FLARE_TOKEN. One JSON body a line.
set -euo pipefail
auth="Authorization: Bearer $FLARE_TOKEN"
json="Content-Type: application/json"
curl -sS "$FLARE_URL/api/video/create" -H "$auth" -H "$json" \
  -d "{\"fileName\": \"demo.mp4\", \"s3Key\": \"$VIDEO_ID\", \"source\": \"composite\", \"width\": 1920, \"height\": 1080, \"duration\": 120}"
echo
curl -sS "$FLARE_URL/api/videos" -H "$auth"
echo
curl -sS "$FLARE_URL/api/video/update/$VIDEO_ID" -H "$auth" -H "$json" \
  -d '{"title": "Launch walkthrough", "password": "secret123"}'
echo
curl -sS "$FLARE_URL/api/video/$VIDEO_ID/embed-settings" -H "$auth" -H "$json" \
  -d '{"embedSettings": {"playerTheme": "flare", "accentColor": "#FF6702", "embedBorderRadius": 12,
       "autoplay": false, "loop": false, "showBranding": true, "allowDownload": false,
       "controlOptions": {"showPlayButton": true, "showProgress": true, "showTime": true,
       "showVolume": true, "showSpeed": true, "showFullscreen": true, "showCaptions": true}}}'
echo
