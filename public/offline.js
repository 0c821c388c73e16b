// The offline page: back to where the person was as soon as the device, and the server, can be
// reached again.
const back = () => location.reload();
addEventListener("online", back);
document.getElementById("retry").addEventListener("click", back);
// `online` is missed when it fires before this script runs, and never fires when the device is
// online but the server is not: so ask the server itself every few seconds too.
setInterval(async () => {
  try {
    const answer = await fetch("/healthz", { cache: "no-store" });
    if (answer.ok) back();
  } catch {
    // Still unreachable.
  }
}, 3000);
