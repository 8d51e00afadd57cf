// The node example of the documented presign page, with the base URL and the token swapped for
// FLARE_URL and FLARE_TOKEN, and one line added to print what it received.
const res = await fetch(`${process.env.FLARE_URL}/api/video/upload/presign`, {
  method: "POST",
  headers: {
    Authorization: `Bearer ${process.env.FLARE_TOKEN}`,
    "Content-Type": "application/json"
  },
  body: JSON.stringify({ videoId: "VIDEO_ID", fileName: "demo.mp4" })
});
const data = await res.json();
console.log(JSON.stringify(data));
