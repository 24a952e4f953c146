// Small maps of where a proof was taken (Leaflet): the zone's circle, the proof's point and a
// scale. No tile server unless the node names one (OH_WEB_TILE_URL, in data-tiles): a plain
// background, nothing fetched from elsewhere. The maps are pictures only (aria-hidden, no
// keyboard or pointer handling); the caption beside each says the same in words.
(function () {
  "use strict";

  function draw(el) {
    if (!window.L || el.dataset.drawn) return;
    el.dataset.drawn = "1";
    const num = (name) => parseFloat(el.dataset[name]);
    const point = L.latLng(num("lat"), num("lng"));
    const centre = L.latLng(num("zoneLat"), num("zoneLng"));
    const radius = num("zoneRadius");
    const map = L.map(el, {
      zoomControl: false, attributionControl: false, keyboard: false, dragging: false, touchZoom: false,
      scrollWheelZoom: false, doubleClickZoom: false, boxZoom: false, zoomSnap: 0.25,
    });
    map.fitBounds(centre.toBounds(2 * radius).extend(point), { padding: [18, 18], maxZoom: 17 });
    if (el.dataset.tiles) L.tileLayer(el.dataset.tiles, { maxZoom: 19 }).addTo(map);
    L.circle(centre, { radius, color: "#0b6e4f", weight: 2, fillColor: "#0b6e4f", fillOpacity: 0.12, interactive: false }).addTo(map);
    const accuracy = num("accuracy");
    if (accuracy > 0) {
      L.circle(point, { radius: accuracy, color: "#a4161a", weight: 1, dashArray: "3 3", fill: false, interactive: false }).addTo(map);
    }
    L.circleMarker(point, { radius: 7, color: "#a4161a", weight: 3, fillColor: "#ffffff", fillOpacity: 1, interactive: false }).addTo(map);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(map);
  }

  function drawAll(root) {
    (root || document).querySelectorAll("[data-proof-map]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", () => drawAll());
  document.addEventListener("htmx:afterSettle", (event) => drawAll(event.target));
})();
