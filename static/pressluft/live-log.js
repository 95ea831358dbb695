// Tails a running job's log on its admin page: asks the panel for lines newer
// than the last one shown, appends them, and reloads the page once the job has
// ended (so status, error and result show as stored).
(function () {
  "use strict";
  var box = document.getElementById("pressluft-live-log");
  if (!box) { return; }
  var output = box.querySelector("pre");
  var state = box.querySelector(".pressluft-live-state");
  var url = box.dataset.url;
  var after = parseInt(box.dataset.after || "0", 10);
  var failures = 0;

  function poll() {
    fetch(url + "?after=" + after, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (response) {
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json();
      })
      .then(function (answer) {
        failures = 0;
        answer.lines.forEach(function (line) {
          output.appendChild(document.createTextNode("[" + line.level + "] " + line.message + "\n"));
          after = line.seq;
        });
        if (answer.lines.length) { output.scrollTop = output.scrollHeight; }
        state.textContent = answer.status;
        if (answer.finished) {
          window.location.reload();
          return;
        }
        window.setTimeout(poll, 1500);
      })
      .catch(function (error) {
        failures += 1;
        state.textContent = "connection problem (" + error.message + "), retrying";
        window.setTimeout(poll, Math.min(30000, 1500 * Math.pow(2, failures)));
      });
  }
  window.setTimeout(poll, 1000);
})();
