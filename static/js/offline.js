/*
 * Registers the service worker (static/js/sw.js, served at /sw.js), and asks it to keep the
 * page the nurse is on when the page's own navigation did not go through the worker (the
 * worker keeps the pages it fetches itself).
 */
(function () {
  "use strict";
  if (!("serviceWorker" in navigator) || !document.body.dataset.user) return;
  // Being controlled now does not mean the page came through the worker: a worker that
  // activates while the page loads claims it (clients.claim) before this script runs, and
  // that page was fetched from the network, unkept. The navigation's timing says which.
  var navigation = window.performance && performance.getEntriesByType
    ? performance.getEntriesByType("navigation")[0] : null;
  var cameThroughWorker = navigation ? navigation.workerStart > 0 : !!navigator.serviceWorker.controller;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
    return navigator.serviceWorker.ready;
  }).then(function (registration) {
    if (!cameThroughWorker && registration.active) {
      registration.active.postMessage({ type: "keep-page", path: window.location.pathname });
    }
    // A page whose navigation began while the worker was activating is not claimed by
    // activate's claim(); it asks again.
    if (!navigator.serviceWorker.controller && registration.active) {
      registration.active.postMessage({ type: "claim" });
    }
    document.documentElement.dataset.offlineReady = "true";
  }).catch(function () {
    // Without a service worker the portal works as before, online only.
  });
})();
