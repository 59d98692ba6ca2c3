// Progressive enhancement of the wallet login's waiting page: poll the JSON status every
// two seconds and go on as soon as the wallet has answered. Without this script the page
// refreshes itself and offers a button, so nothing depends on it.
(function () {
  "use strict";
  var box = document.getElementById("wallet");
  if (!box || !window.fetch) { return; }
  var statusUrl = box.getAttribute("data-status-url");
  var next = box.getAttribute("data-next");
  var meta = document.querySelector("meta[http-equiv=refresh]");
  if (meta) { meta.parentNode.removeChild(meta); }
  function poll() {
    fetch(statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.status === "waiting") { setTimeout(poll, 2000); } else { window.location.assign(next); }
      })
      .catch(function () { setTimeout(poll, 5000); });
  }
  setTimeout(poll, 2000);
})();
