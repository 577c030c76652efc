// The schedule form (schedule_new.html); everything works without it, this only saves taps:
//   input[data-kind] radios show the fields of the chosen kind ([data-for-kind]) and hide the others;
//   button[data-days="0,1,2,3,4"] ticks exactly those days (0 = Monday) and chooses "repeating";
//   ticking a day chooses "repeating" too; input[data-check-all="zones"] ticks every zone;
//   select[data-unapproved-warning=id] shows that warning while an unapproved announcement is chosen.
(function () {
  "use strict";

  function form() { return document.getElementById("schedule-form"); }

  function showKind() {
    var f = form();
    if (!f) { return; }
    var chosen = f.querySelector("input[data-kind]:checked");
    var kind = chosen ? chosen.value : "once";
    f.querySelectorAll("[data-for-kind]").forEach(function (el) {
      el.hidden = el.getAttribute("data-for-kind") !== kind;
    });
  }

  function chooseKind(kind) {
    var radio = form().querySelector('input[data-kind][value="' + kind + '"]');
    if (radio && !radio.checked) { radio.checked = true; showKind(); }
  }

  function warnUnapproved(select) {
    var box = document.getElementById(select.getAttribute("data-unapproved-warning"));
    if (!box) { return; }
    var opt = select.options[select.selectedIndex];
    box.hidden = !opt || !opt.value || opt.getAttribute("data-approved") === "1";
  }

  document.addEventListener("click", function (e) {
    var btn = e.target.closest ? e.target.closest("button[data-days]") : null;
    if (!btn) { return; }
    var days = btn.getAttribute("data-days").split(",");
    form().querySelectorAll('input[name="weekdays"]').forEach(function (box) {
      box.checked = days.indexOf(box.value) >= 0;
    });
    chooseKind("weekly");
  });

  document.addEventListener("change", function (e) {
    var el = e.target;
    if (!form() || !form().contains(el)) { return; }
    if (el.hasAttribute("data-kind")) { showKind(); }
    if (el.name === "weekdays" && el.checked) { chooseKind("weekly"); }
    if (el.hasAttribute("data-check-all")) {
      form().querySelectorAll('input[name="' + el.getAttribute("data-check-all") + '"]').forEach(function (box) {
        box.checked = el.checked;
      });
    }
    if (el.name === "zones" && !el.checked) {
      var all = form().querySelector("input[data-check-all]");
      if (all) { all.checked = false; }
    }
    if (el.hasAttribute("data-unapproved-warning")) { warnUnapproved(el); }
  });

  document.addEventListener("DOMContentLoaded", showKind);
})();
