// OneHeart capture: a photo or video with where and when it was taken, sent as a proof, and a
// queue on this device (IndexedDB) for captures made without a connection.
//
// - Every capture is stored in the queue first, with its own Idempotency-Key
//   (crypto.randomUUID), then sent; it leaves the queue only when the node answered 2xx, or a
//   definite 4xx that is shown to the player. A network error, a 5xx, 401, 408 or 429 keep it,
//   and it is sent again, with the same key, when the browser is back online or a page that
//   loads this script opens. The node answers a key it has seen with its first answer, so a
//   capture is never stored twice (also when two tabs send it: they take a lock first).
// - Items belong to the signed-in player and territory of the page (data-player,
//   data-territory); nobody else's are shown or sent.
// - Upload: XMLHttpRequest (its upload progress drives the progress bar), the session's CSRF
//   token, and HX-Request so that errors come back as the app's message fragment.
// - Pages show a count (#queue-count) and the capture page the queue itself (#capture-queue),
//   where an item can be discarded.
(function () {
  "use strict";
  const DB_NAME = "oneheart-capture", STORE = "queue", LOCK = "oneheart-capture-queue";
  // Answers after which a capture stays queued: the node may take it later.
  const RETRY = new Set([401, 408, 425, 429]);
  const sending = new Set(); // keys in flight in this page
  let flushing = null;

  function json(id) {
    const el = document.getElementById(id);
    if (!el) return {};
    try { return JSON.parse(el.textContent); } catch (e) { return {}; }
  }
  const text = json("capture-text");
  const lang = document.documentElement.lang || undefined;
  // Whose captures this page may show and send: the signed-in player, in its territory.
  const scope = () => {
    const el = document.querySelector("[data-player][data-territory]");
    return el ? { player: el.dataset.player, territory: el.dataset.territory } : { player: null, territory: null };
  };
  const owner = () => scope().player;
  const form = document.getElementById("capture");

  // --- IndexedDB ------------------------------------------------------------------------------
  function openDb() {
    return new Promise((resolve, reject) => {
      const req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = () => {
        if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE, { keyPath: "key" });
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
  }

  function run(mode, op) {
    return openDb().then((db) => new Promise((resolve, reject) => {
      const t = db.transaction(STORE, mode);
      const req = op(t.objectStore(STORE));
      let value;
      req.onsuccess = () => { value = req.result; };
      t.oncomplete = () => { db.close(); resolve(value); };
      t.onerror = t.onabort = () => { db.close(); reject(t.error || new Error("IndexedDB transaction failed")); };
    }));
  }

  const queue = {
    put: (item) => run("readwrite", (s) => s.put(item)),
    remove: (key) => run("readwrite", (s) => s.delete(key)),
    get: (key) => run("readonly", (s) => s.get(key)),
    all: () => run("readonly", (s) => s.getAll()).then((items) => (items || []).filter((i) => i.player === owner())),
  };

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const b = crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }

  const when = (iso) => new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
  const fill = (template, values) => Object.entries(values).reduce((s, [k, v]) => s.replace("{" + k + "}", v), template || "");

  // --- sending --------------------------------------------------------------------------------
  function send(item, progress) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/app/quests/" + encodeURIComponent(item.quest) + "/proofs");
      xhr.setRequestHeader("X-CSRF-Token", window.OneHeart ? window.OneHeart.csrf() : "");
      xhr.setRequestHeader("Idempotency-Key", item.key);
      xhr.setRequestHeader("HX-Request", "true");
      xhr.timeout = 300000;
      if (progress) xhr.upload.addEventListener("progress", (e) => { if (e.lengthComputable) progress(e.loaded / e.total); });
      xhr.onload = () => {
        const status = xhr.status, html = xhr.responseText;
        const code = (/data-code="([a-z_]+)"/.exec(html) || [])[1] || "";
        if (status >= 200 && status < 300) resolve({ outcome: "sent", status, html });
        else if (status >= 400 && status < 500 && !RETRY.has(status) && code !== "csrf_refused") resolve({ outcome: "refused", status, code, html });
        else resolve({ outcome: "kept", status, code });
      };
      xhr.onerror = xhr.ontimeout = xhr.onabort = () => resolve({ outcome: "kept", status: 0 });
      const body = new FormData();
      body.append("lat", String(item.lat));
      body.append("lng", String(item.lng));
      body.append("accuracy_m", String(item.accuracy));
      body.append("captured_at", item.captured_at);
      if (item.duration_minutes) body.append("duration_minutes", String(item.duration_minutes));
      if (item.beneficiaries) body.append("beneficiaries", String(item.beneficiaries));
      body.append("file", new Blob([item.data], { type: item.type }), item.name);
      xhr.send(body);
    });
  }

  function fragment(html) {
    const box = document.createElement("div");
    box.innerHTML = html; // the node's own fragment (server-rendered, escaped)
    return box;
  }

  function show(item, answer) {
    // On the capture page of that quest the answer goes in its result area; elsewhere in the
    // page's message area, with the quest's name.
    const here = form && form.dataset.quest === item.quest && document.getElementById("capture-result");
    const target = here || document.getElementById("messages");
    if (!target) return;
    const box = fragment(answer.html || "");
    if (answer.outcome === "refused") {
      const message = document.createElement("p");
      message.className = "message error refused";
      message.setAttribute("role", "alert");
      message.dataset.status = String(answer.status);
      const why = text["refused_" + answer.status] || text.refused || "";
      message.textContent = (here ? "" : fill(text.refused_for, { quest: item.quest_title }) + " ") + why;
      const detail = box.querySelector("[data-code]");
      if (detail) {
        const small = document.createElement("span");
        small.className = "detail";
        small.textContent = " (" + detail.firstChild.textContent.trim() + ")";
        message.appendChild(small);
      }
      target.replaceChildren(message);
    } else {
      if (!here) {
        const note = document.createElement("p");
        note.className = "message ok";
        note.textContent = fill(text.sent_for, { quest: item.quest_title });
        box.prepend(note);
      }
      target.replaceChildren(...box.childNodes);
      if (window.htmx) window.htmx.process(target);
    }
  }

  let progressFor = null, again = false;
  function flush(progress) {
    if (progress) progressFor = progress;
    if (flushing) { again = true; return flushing; }
    const work = () => queue.all().then(async (items) => {
      for (const item of items.sort((a, b) => a.queued_at.localeCompare(b.queued_at))) {
        if (!navigator.onLine) break;
        if (item.territory !== scope().territory) continue;
        if (sending.has(item.key)) continue;
        const still = await queue.get(item.key); // another tab may have sent it meanwhile
        if (!still) continue;
        sending.add(item.key);
        render();
        let answer;
        try { answer = await send(item, progressFor && progressFor(item)); } finally { sending.delete(item.key); }
        if (answer.outcome === "kept") {
          item.last_status = answer.status;
          item.last_code = answer.code || "";
          await queue.put(item);
          note(item, answer);
          if (answer.status === 401) break; // the rest would fail the same way
        } else {
          await queue.remove(item.key);
          show(item, answer);
          // A sent proof closes the run: another needs the quest started again.
          if (answer.outcome === "sent" && form && form.dataset.quest === item.quest) form.dataset.inactive = "";
        }
        document.dispatchEvent(new CustomEvent("oh:capture-" + answer.outcome, { detail: { key: item.key, status: answer.status } }));
      }
    });
    const locked = navigator.locks && navigator.locks.request ? navigator.locks.request(LOCK, work) : work();
    flushing = locked.catch(() => {}).then(async () => {
      flushing = null;
      progressFor = null;
      const left = (await render()) || 0;
      if (again) { again = false; return flush(); }
      later(left);
    });
    return flushing;
  }

  // A connection that is up but failing fires no "online" event: what is still waiting is
  // tried again after a while (15 s, doubling up to 5 minutes).
  let retryDelay = 15000, retryTimer = null;
  function later(left) {
    clearTimeout(retryTimer);
    if (!left) { retryDelay = 15000; return; }
    if (!navigator.onLine) return;
    retryTimer = setTimeout(() => flush(), retryDelay);
    retryDelay = Math.min(retryDelay * 2, 300000);
  }

  function note(item, answer) {
    if (!form || form.dataset.quest !== item.quest) return;
    const result = document.getElementById("capture-result");
    const p = document.createElement("p");
    p.className = "message warn kept";
    p.textContent = answer.status === 401 ? text.session : (navigator.onLine ? text.kept : text.offline);
    result.replaceChildren(p);
  }

  // --- the queue on the page ------------------------------------------------------------------
  const thumbs = [];
  // How many of this page's player and territory wait (what a flush would send).
  const waiting = () => queue.all().then((items) => items.filter((i) => i.territory === scope().territory).length);
  function render() {
    return queue.all().then((items) => {
      const count = document.getElementById("queue-count");
      if (count) {
        count.querySelector("[data-count]").textContent = new Intl.NumberFormat(lang).format(items.length);
        count.hidden = items.length === 0;
      }
      const list = document.getElementById("capture-queue");
      if (!list) return;
      thumbs.splice(0).forEach((url) => URL.revokeObjectURL(url));
      list.replaceChildren(...items.map(row));
      const empty = document.getElementById("capture-queue-empty");
      if (empty) empty.hidden = items.length > 0;
    }).then(() => waiting()).catch(() => 0);
  }

  function row(item) {
    const li = document.createElement("li");
    li.className = "queued";
    li.dataset.key = item.key;
    if (item.type.startsWith("image/")) {
      const img = document.createElement("img");
      const url = URL.createObjectURL(new Blob([item.data], { type: item.type }));
      thumbs.push(url);
      img.src = url;
      img.alt = "";
      img.className = "thumb";
      li.appendChild(img);
    }
    const what = document.createElement("div");
    const title = document.createElement("strong");
    title.textContent = item.quest_title;
    const info = document.createElement("span");
    info.className = "muted";
    info.textContent = " · " + fill(text.queued_at, { time: when(item.captured_at) }) + " · " + (text.waiting || "");
    what.append(title, info);
    const discard = document.createElement("button");
    discard.type = "button";
    discard.className = "danger discard";
    discard.textContent = text.discard || "Discard";
    discard.setAttribute("aria-label", fill(text.discard_label, { quest: item.quest_title }));
    discard.disabled = sending.has(item.key);
    discard.addEventListener("click", () => {
      if (sending.has(item.key) || !window.confirm(text.discard_confirm)) return;
      queue.remove(item.key).then(render);
    });
    li.append(what, discard);
    return li;
  }

  // --- the capture form -------------------------------------------------------------------------
  function capturePage() {
    if (!form) return;
    const fileInput = document.getElementById("capture-file");
    const preview = document.getElementById("capture-preview");
    const where = document.getElementById("capture-position");
    const time = document.getElementById("capture-time");
    const why = document.getElementById("capture-why");
    const upload = document.getElementById("upload");
    const bar = document.getElementById("upload-progress");
    const maxBytes = Number(form.dataset.maxBytes || 0);
    let position = null, capturedAt = null, previewUrl = null;
    const untimed = time.textContent;

    function ready() {
      const file = fileInput.files[0];
      let reason = "";
      if (form.dataset.inactive !== undefined) reason = text.inactive;
      else if (!file) reason = text.need_file;
      else if (!position) reason = text.need_position;
      why.textContent = reason;
      return !reason;
    }

    if (navigator.geolocation) {
      navigator.geolocation.watchPosition((pos) => {
        position = { lat: pos.coords.latitude, lng: pos.coords.longitude, accuracy: Math.max(0, Math.round(pos.coords.accuracy || 0)) };
        where.textContent = fill(text.position, { m: new Intl.NumberFormat(lang).format(position.accuracy) });
        ready();
      }, (err) => {
        where.textContent = err && err.code === 1 ? text.denied : text.unavailable;
        ready();
      }, { enableHighAccuracy: true, maximumAge: 10000, timeout: 30000 });
    } else {
      where.textContent = text.unavailable;
    }

    fileInput.addEventListener("change", () => {
      const file = fileInput.files[0];
      if (previewUrl) URL.revokeObjectURL(previewUrl);
      previewUrl = null;
      preview.replaceChildren();
      preview.hidden = true;
      if (!file) { time.textContent = untimed; ready(); return; }
      // The device's clock: when a camera made the file (its last-modified time), else now.
      const now = Date.now();
      const made = file.lastModified && file.lastModified <= now + 60000 && file.lastModified > now - 7 * 86400000 ? file.lastModified : now;
      capturedAt = new Date(made).toISOString();
      time.textContent = fill(text.taken, { time: when(capturedAt) });
      previewUrl = URL.createObjectURL(file);
      const media = document.createElement(file.type.startsWith("video/") ? "video" : "img");
      media.src = previewUrl;
      if (media.tagName === "VIDEO") { media.controls = true; media.muted = true; } else { media.alt = ""; }
      preview.appendChild(media);
      preview.hidden = false;
      ready();
    });

    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = document.getElementById("capture-result");
      if (!ready()) return;
      const file = fileInput.files[0];
      if (!/^(image|video)\//.test(file.type || "")) { why.textContent = text.not_media; return; }
      if (maxBytes && file.size > maxBytes) {
        const p = document.createElement("p");
        p.className = "message error refused";
        p.setAttribute("role", "alert");
        p.textContent = text.too_large;
        result.replaceChildren(p);
        return;
      }
      const number = (name) => { const v = form.elements[name].value; return v ? Number(v) : null; };
      const item = {
        key: newKey(),
        player: owner(),
        territory: scope().territory,
        quest: form.dataset.quest,
        quest_title: form.dataset.questTitle,
        name: file.name || "capture",
        type: file.type,
        size: file.size,
        data: await file.arrayBuffer(),
        lat: Number(position.lat.toFixed(7)),
        lng: Number(position.lng.toFixed(7)),
        accuracy: position.accuracy,
        captured_at: capturedAt || new Date().toISOString(),
        duration_minutes: number("duration_minutes"),
        beneficiaries: number("beneficiaries"),
        queued_at: new Date().toISOString(),
      };
      try {
        await queue.put(item); // on this device first: nothing is lost if the page closes now
      } catch (e) {
        // No storage on this device (a private window of some browsers): send it directly.
        upload.hidden = false;
        const answer = await send(item, (share) => { bar.value = Math.round(share * 100); });
        upload.hidden = true;
        if (answer.outcome === "kept") {
          const p = document.createElement("p");
          p.className = "message error";
          p.setAttribute("role", "alert");
          p.textContent = text.not_kept;
          result.replaceChildren(p);
        } else show(item, answer);
        return;
      }
      form.reset();
      preview.replaceChildren();
      preview.hidden = true;
      time.textContent = untimed;
      capturedAt = null;
      ready();
      if (!navigator.onLine) {
        note(item, { status: 0 });
        render();
        return;
      }
      const p = document.createElement("p");
      p.className = "message";
      p.textContent = text.sending;
      result.replaceChildren(p);
      bar.value = 0;
      upload.hidden = false;
      await render();
      await flush((queued) => (queued.key === item.key ? (share) => { bar.value = Math.round(share * 100); } : null));
      upload.hidden = true;
    });
    document.addEventListener("oh:capture-sent", ready);
    ready();
  }

  window.OneHeart = Object.assign(window.OneHeart || {}, { queue: { all: queue.all, flush: () => flush(), render } });
  window.addEventListener("online", () => flush());
  window.addEventListener("offline", render);
  document.addEventListener("DOMContentLoaded", () => {
    capturePage();
    render().then(() => { if (navigator.onLine) flush(); });
  });
})();
