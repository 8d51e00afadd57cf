# The python example of the documented presign page, with the base URL and the token swapped for
# FLARE_URL and FLARE_TOKEN; it prints the JSON with json.dumps so the test can parse it.
import json
import os

import requests

res = requests.post(
  os.environ["FLARE_URL"] + "/api/video/upload/presign",
  headers={"Authorization": "Bearer " + os.environ["FLARE_TOKEN"]},
  json={ "videoId": "VIDEO_ID", "fileName": "demo.mp4" }
)
print(json.dumps(res.json()))
