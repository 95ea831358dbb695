// Tails a running job's log on its admin page: asks the panel for lines newer
// than the last one shown, appends them, shows the job's state as it moves,
// and once the job has ended shows its final state and reloads the page (so
// status, error and result show as stored, and the polling stops: a finished
// job's page has no live log).
//
// The admin puts form media in the page's <head>, before the live log box
// exists: everything waits for the document to be parsed.
(function () {
  "use strict";

  var POLL_MS = 1500;
  var MAX_BACKOFF_MS = 30000;

  function follow(box) {
    var output = box.querySelector("pre");
    var state = box.querySelector(".pressluft-live-state");
    var url = box.dataset.url;
    var after = parseInt(box.dataset.after || "0", 10) || 0;
    var failures = 0;

    function stop(message) {
      state.textContent = message;
      box.dataset.stopped = "1";
    }

    function poll() {
      fetch(url + "?after=" + after, { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) {
          // A 404 (the job is gone) will not get better by asking again.
          if (response.status === 404) { return { gone: true }; }
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          // Signed out: the admin answers with its login page, not JSON.
          var type = response.headers.get("Content-Type") || "";
          if (type.indexOf("application/json") !== 0) { return { signedOut: true }; }
          return response.json();
        })
        .then(function (answer) {
          if (answer.gone) { stop("no longer available"); return; }
          if (answer.signedOut) { stop("not signed in any more: reload the page"); return; }
          failures = 0;
          if (answer.lines.length) {
            var text = answer.lines.map(function (line) {
              return "[" + line.level + "] " + line.message + "\n";
            }).join("");
            output.appendChild(document.createTextNode(text));
            after = answer.lines[answer.lines.length - 1].seq;
            output.scrollTop = output.scrollHeight;
          }
          state.textContent = answer.status;
          if (answer.finished) {
            box.dataset.finished = answer.status;
            window.location.reload();
            return;
          }
          window.setTimeout(poll, POLL_MS);
        })
        .catch(function (error) {
          failures += 1;
          state.textContent = "connection problem (" + error.message + "), retrying";
          window.setTimeout(poll, Math.min(MAX_BACKOFF_MS, POLL_MS * Math.pow(2, failures)));
        });
    }

    window.setTimeout(poll, 1000);
  }

  function start() {
    var box = document.getElementById("pressluft-live-log");
    if (box) { follow(box); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
