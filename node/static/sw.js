// OneHeart service worker: makes the app installable and gives it an offline page.
// It keeps only what is nobody's: the static files (/static/..., their URLs carry a content
// hash) and the offline page (/app/offline, rendered signed out). Pages are personal and live:
// they always come from the network and are never stored; when the network is away a page
// navigation gets the offline page. Nothing marked no-store or private is ever stored.
// Captures made offline wait in IndexedDB and are sent by the page (capture.js).
// The caches are emptied on sign-out: app.js asks (message "signed-out") before the sign-out
// form is sent, and the sign-in page reached after it (/app/signin?signed_out=1) does it too.
const CACHE = "oneheart-static-v2";
const OFFLINE = "/app/offline";

function storable(response) {
  if (!response || !response.ok || response.type !== "basic") return false;
  const control = (response.headers.get("Cache-Control") || "").toLowerCase();
  return !/no-store|private/.test(control);
}

async function keepOffline() {
  const cache = await caches.open(CACHE);
  const response = await fetch(OFFLINE, { credentials: "omit", cache: "no-cache" });
  if (storable(response)) await cache.put(OFFLINE, response);
}

async function forget() {
  const keys = await caches.keys();
  await Promise.all(keys.map((key) => caches.delete(key)));
}

self.addEventListener("install", (event) => {
  event.waitUntil(keepOffline().catch(() => {}).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

self.addEventListener("message", (event) => {
  if (event.data && event.data.type === "signed-out") {
    event.waitUntil(forget().then(() => keepOffline()).catch(() => {}));
  }
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (url.pathname.startsWith("/static/")) {
    event.respondWith(caches.open(CACHE).then(async (cache) => {
      const hit = await cache.match(request);
      if (hit) return hit;
      const response = await fetch(request);
      if (storable(response)) cache.put(request, response.clone());
      return response;
    }));
  } else if (request.mode === "navigate" && url.pathname.startsWith("/app")) {
    if (url.pathname === "/app/signin" && url.searchParams.has("signed_out")) {
      event.waitUntil(forget().then(() => keepOffline()).catch(() => {}));
    }
    event.respondWith(fetch(request).catch(async () => {
      const offline = await caches.match(OFFLINE);
      return offline || Response.error();
    }));
  }
});
