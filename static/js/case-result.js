/*
 * Case page: while the analysis runs, fetch the result card every few seconds and swap it
 * in, so the result appears without a reload. Stops when the analysis has finished; backs
 * off when the connection fails or the page is in the background.
 */
(function () {
  "use strict";

  var region = document.getElementById("result-card");
  if (!region || region.dataset.pending !== "true" || !window.fetch) return;

  var url = region.dataset.pollUrl;
  var statusHead = document.getElementById("case-status");
  var announcer = document.getElementById("result-announcer");
  var FAST = 2500; // ms between polls while the analysis is fresh
  var SLOW = 10000; // after a few minutes, or while the connection is failing
  var SLOW_AFTER = 3 * 60 * 1000;
  var started = Date.now();
  var failures = 0;
  var timer = null;
  var inflight = false;
  var etag = null;

  function schedule() {
    var delay = Date.now() - started > SLOW_AFTER || failures > 2 ? SLOW : FAST;
    timer = window.setTimeout(poll, delay);
  }

  function poll() {
    timer = null;
    if (document.hidden) {
      schedule();
      return;
    }
    inflight = true;
    var headers = { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" };
    // The server answers 304, cheaply, while the card it last sent is still the card.
    if (etag) headers["If-None-Match"] = etag;
    fetch(url, {
      credentials: "same-origin",
      headers: headers,
      cache: "no-store",
    })
      .then(function (response) {
        if (response.status === 304) return null;
        if (response.redirected || !response.ok) throw new Error("HTTP " + response.status);
        etag = response.headers.get("ETag");
        return response.json();
      })
      .then(function (data) {
        inflight = false;
        failures = 0;
        if (data === null) {
          schedule();
          return;
        }
        // Redraw only what changed: an unchanged card keeps its photos loaded.
        if (data.fingerprint !== region.dataset.fingerprint) {
          region.innerHTML = data.html;
          region.dataset.fingerprint = data.fingerprint;
          if (statusHead && data.status_html) statusHead.innerHTML = data.status_html;
        }
        region.dataset.pending = data.pending ? "true" : "false";
        if (data.pending) {
          schedule();
        } else if (announcer) {
          announcer.textContent = region.dataset.msgFinished || "The analysis has finished; the result is shown.";
        }
      })
      .catch(function () {
        inflight = false;
        failures += 1;
        schedule();
      });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden || inflight || region.dataset.pending !== "true") return;
    if (timer !== null) window.clearTimeout(timer);
    poll();
  });
  schedule();
})();
