# The requests of the hosted Flare docs' python examples (create, list, update metadata, update
# embed settings) against FLARE_URL with FLARE_TOKEN. Prints one JSON body a line.
import json
import os

import requests

base = os.environ["FLARE_URL"]
video_id = os.environ["VIDEO_ID"]
session = requests.Session()
session.headers.update({"Authorization": "Bearer " + os.environ["FLARE_TOKEN"]})

for res in [
    session.post(base + "/api/video/create", json={"fileName": "demo.mp4", "s3Key": video_id, "source": "composite"}),
    session.get(base + "/api/videos"),
    session.patch(base + "/api/video/update/" + video_id, json={"title": "Launch walkthrough", "password": "secret123"}),
    session.patch(
        base + "/api/video/" + video_id + "/embed-settings",
        json={"embedSettings": {"playerTheme": "flare", "accentColor": "#FF6702", "embedBorderRadius": 12,
                                "autoplay": False, "loop": False, "showBranding": True, "allowDownload": False}},
    ),
]:
    print(json.dumps(res.json()))
