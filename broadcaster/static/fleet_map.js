// The fleet map (fleet_map.html): Leaflet (static/leaflet/), markers from the JSON island #markers, state and
// zone names from #map-labels, tiles from #map's data-tiles (LOAPHUONG_MAP_TILES_URL), node pages from
// data-detail.
//
// Works without the internet (a ward office often has none): with no tile URL, or when the tiles cannot be
// loaded (the first tiles all fail, or none arrives within a few seconds), the tile layer is dropped and the map
// keeps its zones and loudspeakers on a plain background, with a note in #map-note (aria-live).
// Each zone is drawn as a circle around its loudspeakers, labelled with its name; loudspeakers are coloured by
// state (the legend above the map; the list under it says the same for screen readers).
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || !window.L) { return; }
  var markers = JSON.parse(document.getElementById("markers").textContent);
  var labels = JSON.parse(document.getElementById("map-labels").textContent);
  var note = document.getElementById("map-note");
  var colors = {online: "#1e7d32", drifting: "#b26a00", offline: "#b3261e", alert: "#4a0d08", unknown: "#6b6b73"};
  // no fade: a popup is readable (and checked for contrast) the moment it opens
  var map = L.map(el, {preferCanvas: markers.length > 2000, zoomControl: false, fadeAnimation: false});
  L.control.zoom({zoomInTitle: el.dataset.zoomIn, zoomOutTitle: el.dataset.zoomOut}).addTo(map);
  map.attributionControl.setPrefix(false);

  function plain(message) {
    el.classList.add("is-plain");
    if (note && message) { note.textContent = message; note.classList.add("is-shown"); }
  }

  // Leaflet blanks a removed or abandoned tile with a data: image, which the panel's CSP refuses (img-src is
  // 'self' and the tile server): take the address away instead, which also cancels the request.
  var QuietTiles = L.TileLayer.extend({
    _removeTile: function (key) {
      var tile = this._tiles[key];
      if (!tile) { return; }
      tile.el.removeAttribute("src");
      return L.GridLayer.prototype._removeTile.call(this, key);
    },
    _abortLoading: function () {
      var key, tile, coords;
      for (key in this._tiles) {
        if (this._tiles[key].coords.z !== this._tileZoom) {
          tile = this._tiles[key].el;
          tile.onload = L.Util.falseFn;
          tile.onerror = L.Util.falseFn;
          if (!tile.complete) {
            tile.removeAttribute("src");
            coords = this._tiles[key].coords;
            L.DomUtil.remove(tile);
            delete this._tiles[key];
            this.fire("tileabort", {tile: tile, coords: coords});
          }
        }
      }
    }
  });

  var tiles = (el.dataset.tiles || "").trim();
  if (tiles) {
    var layer = new QuietTiles(tiles, {maxZoom: 19, attribution: "&copy; OpenStreetMap"});
    var loaded = 0, failed = 0, given_up = false;
    var give_up = function () {
      if (given_up || loaded) { return; }
      given_up = true;
      map.removeLayer(layer);
      plain(note && note.dataset.offline);
    };
    layer.on("tileload", function () { loaded += 1; });
    layer.on("tileerror", function () {
      failed += 1;
      if (!loaded && failed >= 2) { give_up(); }
    });
    layer.addTo(map);
    window.setTimeout(give_up, 8000);  // a server that never answers: no error, no tile
  } else {
    plain(note && note.dataset.none);
  }

  // zones: a circle around each zone's loudspeakers (at least 60 m), with the zone's name
  var byZone = {};
  markers.forEach(function (m) {
    if (m.zone) { (byZone[m.zone] = byZone[m.zone] || []).push(m); }
  });
  var zoneLayer = L.featureGroup();
  Object.keys(byZone).forEach(function (code) {
    var members = byZone[code];
    var lat = 0, lon = 0;
    members.forEach(function (m) { lat += m.lat; lon += m.lon; });
    var centre = L.latLng(lat / members.length, lon / members.length);
    var radius = 60;
    members.forEach(function (m) { radius = Math.max(radius, centre.distanceTo([m.lat, m.lon]) + 40); });
    L.circle(centre, {radius: radius, color: "#1d4f91", weight: 2, dashArray: "6 4", fillColor: "#1d4f91",
                      fillOpacity: 0.06, interactive: false, className: "zone-area"})
      .bindTooltip(labels.zones[code] || code, {permanent: true, direction: "top", className: "zone-label"})
      .addTo(zoneLayer);
  });
  zoneLayer.addTo(map);

  var group = L.featureGroup();
  markers.forEach(function (m) {
    var popup = document.createElement("div");
    var link = document.createElement("a");
    link.href = el.dataset.detail.replace("NODE", encodeURIComponent(m.id));
    link.textContent = m.name || m.id;
    link.title = el.dataset.open;
    popup.appendChild(link);
    popup.appendChild(document.createElement("br"));
    popup.appendChild(document.createTextNode(m.id + (m.zone ? " · " + (labels.zones[m.zone] || m.zone) : "")));
    popup.appendChild(document.createElement("br"));
    popup.appendChild(document.createTextNode(labels.states[m.status] || labels.states.unknown));
    L.circleMarker([m.lat, m.lon], {radius: 9, weight: 2, color: "#fff", fillColor: colors[m.status] || colors.unknown,
                                    fillOpacity: 0.95, className: "node-marker st-" + m.status})
      .bindPopup(popup).addTo(group);
  });
  group.addTo(map);
  if (markers.length) { map.fitBounds(group.getBounds().pad(0.3), {maxZoom: 17}); }
  else { map.setView([16.0, 106.5], 5); }
  window.loaphuongMap = {map: map, count: markers.length};
})();
