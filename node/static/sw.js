// OneHeart service worker: keeps the app shell for offline use. The capture queue itself lives
// in IndexedDB and is sent by the page (capture.js) when the connection returns.
const SHELL = "oneheart-shell-v1";
self.addEventListener("install", (event) => { self.skipWaiting(); });
self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});
self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    // Static files carry a content hash in their URL: cache first.
    event.respondWith(caches.open(SHELL).then(async (cache) => {
      const hit = await cache.match(request);
      if (hit) return hit;
      const response = await fetch(request);
      if (response.ok) cache.put(request, response.clone());
      return response;
    }));
  } else if (request.mode === "navigate" && url.pathname.startsWith("/app")) {
    // Pages: the network first (they are personal and live); the last copy when offline.
    event.respondWith(fetch(request).then((response) => {
      if (response.ok) caches.open(SHELL).then((cache) => cache.put(request, response.clone()));
      return response;
    }).catch(() => caches.open(SHELL).then((cache) => cache.match(request)).then((hit) => hit || Response.error())));
  }
});
