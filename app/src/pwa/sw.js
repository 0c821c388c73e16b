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

// A web push (its payload decrypted by the browser): show it, unless a page of the app is in front,
// where the message is on screen already. Payload: { title, body, url, tag, room, message }.
self.addEventListener("push", (event) => {
  let push;
  try {
    push = event.data ? event.data.json() : null;
  } catch {
    push = null;
  }
  if (!push || typeof push.title !== "string") return;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      if (windows.some((w) => w.visibilityState === "visible" && w.focused)) return;
      return self.registration.showNotification(push.title, {
        body: push.body,
        tag: push.tag,
        icon: "/icons/icon-192.png",
        badge: "/icons/icon-192.png",
        data: { url: push.url },
      });
    }),
  );
});

// Clicking a notification opens the room at the message: in an open window of the app if there is
// one, else in a new one. Only this site's own paths are followed.
self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const path = event.notification.data && event.notification.data.url;
  const target = new URL(typeof path === "string" && path.startsWith("/") && !path.startsWith("//") ? path : "/", self.location.origin);
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => new URL(w.url).origin === self.location.origin);
      if (open) return open.navigate(target.href).then((w) => (w || open).focus());
      return self.clients.openWindow(target.href);
    }),
  );
});
