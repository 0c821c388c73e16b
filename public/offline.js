// The offline page: back to where the person was as soon as the device is online again.
addEventListener("online", () => location.reload());
document.getElementById("retry").addEventListener("click", () => location.reload());
