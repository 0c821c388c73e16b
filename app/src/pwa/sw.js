// ML-CHAT's service worker (served by the server as /sw.js, with the build's version and files
// filled in). It keeps the app's own files for when the device is offline, and nothing else: pages
// and API answers are people's data and always come from the network.
const VERSION = "__VERSION__";
const FILES = [/* __FILES__ */];
const CACHE = `mlchat-shell-${VERSION}`;

self.addEventListener("install", (event) => {
  // `reload`: the files of this version, never a copy the browser's HTTP cache kept of an older one.
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(FILES.map((file) => new Request(file, { cache: "reload" }))))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  // A new version takes over open pages at once and drops the old version's files.
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((key) => key.startsWith("mlchat-shell-") && key !== CACHE).map((key) => caches.delete(key))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate") {
    // A page from the network; offline, the offline page.
    event.respondWith(fetch(request).catch(() => caches.match("/offline.html", { cacheName: CACHE })));
    return;
  }
  if (FILES.includes(url.pathname)) {
    // The network first, so a deployed version is used as soon as it is there (a stale WebAssembly
    // never talks to a newer server); the kept copy only when the network fails.
    event.respondWith(fetch(request).catch(() => caches.match(url.pathname, { cacheName: CACHE })));
  }
});
