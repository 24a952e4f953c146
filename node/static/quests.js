// OneHeart "Quests near me": the map (Leaflet) of the territory's zones and the listed quests,
// the player's position from the browser, and the list asked again with that position.
// - Tiles only when the node names a tile server (data-tiles); otherwise zones and quests are
//   drawn on a plain background with a scale, and nothing is fetched from anywhere.
// - No L.marker (its default icon would load images): quests are L.circleMarker, the player a
//   circle marker with a circle of the position's accuracy.
// - The list (#quest-results) is the map's text alternative and its source: each item carries
//   its zone's centre; the map redraws whenever htmx swaps the list.
(function () {
  "use strict";
  const MOVED_M = 100; // ask for the list again when the player moved this far

  function json(id, fallback) {
    const el = document.getElementById(id);
    if (!el) return fallback;
    try { return JSON.parse(el.textContent); } catch (e) { return fallback; }
  }

  function metres(a, b) {
    const rad = Math.PI / 180, dLat = (b.lat - a.lat) * rad, dLng = (b.lng - a.lng) * rad;
    const h = Math.sin(dLat / 2) ** 2 + Math.cos(a.lat * rad) * Math.cos(b.lat * rad) * Math.sin(dLng / 2) ** 2;
    return 2 * 6371008.8 * Math.asin(Math.min(1, Math.sqrt(h)));
  }

  function say(text) {
    const status = document.getElementById("position-status");
    if (status && text) status.textContent = text;
  }

  function init() {
    const el = document.getElementById("quest-map");
    const form = document.getElementById("quest-filters");
    if (!el || !form) return;
    const text = json("quests-text", {});
    const lang = document.documentElement.lang || undefined;
    let map = null, questLayer = null, me = null, ring = null, asked = null, fitted = false;

    if (window.L) {
      const tiles = el.dataset.tiles || "";
      map = L.map(el, { attributionControl: Boolean(tiles), zoomSnap: 0.5, worldCopyJump: true });
      if (tiles) {
        L.tileLayer(tiles, { attribution: el.dataset.attribution || "", maxZoom: 19 }).addTo(map);
      } else {
        el.classList.add("plain");
      }
      L.control.scale({ imperial: false }).addTo(map);
      // A view first: Leaflet adds layers to a map once it has one.
      const zoneList = json("zones-data", []);
      let bounds = null;
      for (const z of zoneList) {
        const area = L.latLng(z.lat, z.lng).toBounds(2 * z.radius_m);
        bounds = bounds ? bounds.extend(area) : area;
      }
      if (bounds) map.fitBounds(bounds, { padding: [16, 16], maxZoom: 15 });
      else map.setView([0, 0], 2);
      for (const z of zoneList) {
        L.circle([z.lat, z.lng], {
          radius: z.radius_m, className: "zone-area", color: "#0b6e4f", weight: 2, fillOpacity: 0.12, interactive: false,
        }).addTo(map);
      }
      questLayer = L.featureGroup().addTo(map);
    }

    function drawQuests() {
      if (!map) return;
      questLayer.clearLayers();
      const items = Array.from(document.querySelectorAll("#quest-results [data-quest][data-lat]"));
      const perZone = {};
      for (const item of items) (perZone[item.dataset.zone] = perZone[item.dataset.zone] || []).push(item);
      for (const group of Object.values(perZone)) {
        group.forEach((item, i) => {
          // Several quests of one zone sit on a small ring around its centre, so each can be picked.
          const lat = Number(item.dataset.lat), lng = Number(item.dataset.lng);
          const turn = (2 * Math.PI * i) / group.length, spread = group.length > 1 ? 0.0012 : 0;
          const at = [lat + spread * Math.sin(turn), lng + (spread * Math.cos(turn)) / Math.max(0.2, Math.cos(lat * Math.PI / 180))];
          const link = document.createElement("a");
          link.href = item.dataset.href;
          link.textContent = item.dataset.title;
          L.circleMarker(at, {
            radius: 9, className: "quest-marker", color: "#ffffff", weight: 2, fillColor: "#a4161a", fillOpacity: 1,
          }).bindPopup(link).bindTooltip(item.dataset.title).addTo(questLayer);
        });
      }
    }

    function fit() {
      if (!map || fitted || !me) return;
      // The player and the nearest few quests (the list is nearest first).
      const bounds = L.latLngBounds([me.getLatLng()]);
      questLayer.getLayers().slice(0, 3).forEach((m) => bounds.extend(m.getLatLng()));
      if (ring) bounds.extend(ring.getBounds());
      map.fitBounds(bounds, { padding: [24, 24], maxZoom: 15 });
      fitted = true;
    }

    function place(here, accuracy) {
      if (map) {
        if (!me) {
          ring = L.circle(here, { radius: accuracy, className: "player-accuracy", color: "#1a4fd6", weight: 1, fillOpacity: 0.15, interactive: false }).addTo(map);
          me = L.circleMarker(here, { radius: 7, className: "player-position", color: "#ffffff", weight: 3, fillColor: "#1a4fd6", fillOpacity: 1 })
            .bindTooltip(text.you || "").addTo(map);
        } else {
          me.setLatLng(here);
          ring.setLatLng(here).setRadius(accuracy);
        }
      }
    }

    function located(pos) {
      const here = { lat: pos.coords.latitude, lng: pos.coords.longitude };
      const accuracy = Math.round(pos.coords.accuracy || 0);
      say((text.position || "").replace("{m}", new Intl.NumberFormat(lang).format(accuracy)));
      place(here, accuracy);
      if (!asked || metres(asked, here) > MOVED_M) {
        asked = here;
        form.elements.lat.value = here.lat.toFixed(7);
        form.elements.lng.value = here.lng.toFixed(7);
        form.elements.accuracy.value = String(accuracy);
        fitted = false;
        if (window.htmx) window.htmx.trigger(form, "oh:position");
        else form.submit();
      }
    }

    function failed(err) {
      say(err && err.code === 1 ? text.denied : text.unavailable);
    }

    function watch() {
      if (!navigator.geolocation) { failed(null); return; }
      say(text.finding);
      navigator.geolocation.watchPosition(located, failed, { enableHighAccuracy: true, maximumAge: 30000, timeout: 30000 });
    }

    const button = document.getElementById("locate");
    if (button) button.addEventListener("click", () => { button.hidden = true; watch(); });
    // Ask at once only when the browser already allows it; otherwise the player presses the button.
    if (navigator.permissions && navigator.permissions.query) {
      navigator.permissions.query({ name: "geolocation" }).then((state) => {
        if (state.state === "granted") watch();
        else if (state.state === "denied") failed({ code: 1 });
        else if (button) button.hidden = false;
      }, () => { if (button) button.hidden = false; });
    } else if (button) {
      button.hidden = false;
    }

    // A position the list was already asked with (the address says it): shown as the player's.
    const given = { lat: parseFloat(form.elements.lat.value), lng: parseFloat(form.elements.lng.value) };
    if (Number.isFinite(given.lat) && Number.isFinite(given.lng)) {
      asked = given;
      place(given, parseFloat(form.elements.accuracy.value) || 0);
    }

    // The list was asked again (position, filters, next page): draw its quests.
    document.body.addEventListener("htmx:afterSettle", () => { drawQuests(); fit(); });
    drawQuests();
    fit();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
