// OneHeart player app: the small glue the server-rendered pages need.
// - every htmx request carries the session's CSRF token (X-CSRF-Token);
// - live updates: one EventSource on /app/live; each notification is re-dispatched on <body>
//   as "oh:notification" and "oh:<kind>" (payout, validated, vote...), which page fragments
//   name in hx-trigger ("oh:notification from:body") to refresh themselves;
// - keyboard shortcuts: an element with data-key="a" is clicked when "a" is pressed (not while typing);
// - forms with data-confirm ask before they are sent;
// - the service worker (static files and an offline page) is registered; signing out empties
//   its caches first.
(function () {
  "use strict";
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  window.OneHeart = { csrf };

  document.addEventListener("htmx:configRequest", (event) => {
    event.detail.headers["X-CSRF-Token"] = csrf();
  });

  function startLive() {
    const url = document.body.dataset.live;
    if (!url || !window.EventSource) return;
    const source = new EventSource(url);
    source.addEventListener("notification", (event) => {
      let data = {};
      try { data = JSON.parse(event.data); } catch (e) { return; }
      const detail = { notification: data };
      document.body.dispatchEvent(new CustomEvent("oh:notification", { detail }));
      if (data.kind) document.body.dispatchEvent(new CustomEvent("oh:" + data.kind, { detail }));
    });
    window.OneHeart.live = source;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
    const t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const target = document.querySelector('[data-key="' + CSS.escape(event.key) + '"]:not([disabled])');
    if (target) { event.preventDefault(); target.click(); }
  });

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.dataset && form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Signing out: the caches are emptied before the form goes (at most a second's wait).
  function forgetCaches() {
    const jobs = [];
    if (window.caches) jobs.push(caches.keys().then((keys) => Promise.all(keys.map((k) => caches.delete(k)))));
    const worker = navigator.serviceWorker && navigator.serviceWorker.controller;
    if (worker) worker.postMessage({ type: "signed-out" });
    return Promise.race([Promise.all(jobs), new Promise((done) => setTimeout(done, 1000))]).catch(() => {});
  }
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (event.defaultPrevented || !form.matches || !form.matches('form[action="/app/signout"]')) return;
    if (form.dataset.cleared) return;
    event.preventDefault();
    forgetCaches().then(() => { form.dataset.cleared = "1"; form.submit(); });
  });

  document.addEventListener("DOMContentLoaded", () => {
    startLive();
    if ("serviceWorker" in navigator && document.body.dataset.live) {
      navigator.serviceWorker.register("/app/sw.js", { scope: "/app" }).catch(() => {});
    }
  });
})();
