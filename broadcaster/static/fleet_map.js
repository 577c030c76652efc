// The fleet map (fleet_map.html): Leaflet (static/leaflet/), markers from the JSON island #markers, tiles from
// #map's data-tiles (LOAPHUONG_MAP_TILES_URL; none → markers only), node pages from data-detail.
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var markers = JSON.parse(document.getElementById("markers").textContent);
  var colors = {online: "#1e7d32", drifting: "#b26a00", offline: "#b3261e", alert: "#4a0d08", unknown: "#8a8a8a"};
  var map = L.map(el, {preferCanvas: true});
  if (el.dataset.tiles) {
    L.tileLayer(el.dataset.tiles, {maxZoom: 19, attribution: "&copy; OpenStreetMap"}).addTo(map);
  }
  var group = L.featureGroup();
  markers.forEach(function (m) {
    var popup = document.createElement("div");
    var link = document.createElement("a");
    link.href = el.dataset.detail.replace("NODE", encodeURIComponent(m.id));
    link.textContent = m.name || m.id;
    popup.appendChild(link);
    popup.appendChild(document.createElement("br"));
    popup.appendChild(document.createTextNode(m.id + (m.zone ? " · " + m.zone : "")));
    L.circleMarker([m.lat, m.lon], {radius: 8, weight: 2, color: "#fff", fillColor: colors[m.status] || "#8a8a8a",
                                    fillOpacity: 0.95}).bindPopup(popup).addTo(group);
  });
  group.addTo(map);
  if (markers.length) { map.fitBounds(group.getBounds().pad(0.2), {maxZoom: 16}); }
  else { map.setView([16.0, 106.5], 5); }
  window.loaphuongMap = {map: map, count: markers.length};
})();
