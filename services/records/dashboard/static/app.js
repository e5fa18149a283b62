// Times are rendered as UTC ISO 8601 in <time datetime>; shown here in the viewer's own time zone.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
  function localise(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var moment = new Date(el.getAttribute("datetime"));
      if (!isNaN(moment.getTime())) {
        el.textContent = format.format(moment);
        el.title = el.getAttribute("datetime") + " (UTC)";
      }
    });
    root.querySelectorAll("[data-zone]").forEach(function (el) { el.textContent = zone; });
  }
  document.addEventListener("DOMContentLoaded", function () { localise(document); });
  document.addEventListener("htmx:afterSwap", function (event) { localise(event.target); });
})();
