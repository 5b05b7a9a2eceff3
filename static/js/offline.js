/*
 * Registers the service worker (static/js/sw.js, served at /sw.js), and asks it to keep the
 * page the nurse is on when it was loaded before the worker was in control.
 */
(function () {
  "use strict";
  if (!("serviceWorker" in navigator) || !document.body.dataset.user) return;
  var wasControlled = !!navigator.serviceWorker.controller;
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
    return navigator.serviceWorker.ready;
  }).then(function (registration) {
    if (!wasControlled && registration.active) {
      registration.active.postMessage({ type: "keep-page", path: window.location.pathname });
      if (!navigator.serviceWorker.controller) registration.active.postMessage({ type: "claim" });
    }
    document.documentElement.dataset.offlineReady = "true";
  }).catch(function () {
    // Without a service worker the portal works as before, online only.
  });
})();
