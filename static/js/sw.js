/*
 * The service worker: the new-case page and its assets work without a connection, and
 * cases kept on the phone are sent by Background Sync when the connection returns.
 *
 * Served at /sw.js by skinportal.offline.service_worker, which puts PRECACHE (the static
 * files the pages need, with their production names) and OUTBOX_URL before this file.
 *
 * Pages: network first; the answer is kept so the same page opens offline. Only the pages
 * a nurse needs to submit a case are kept (the patient list, a patient, the new-case form),
 * only what the server sent this user (her own clinics), and all of it is deleted on
 * sign-out. Static files: from the cache, refreshed in the background.
 */
/* global PRECACHE, OUTBOX_URL, Outbox */
"use strict";

importScripts(OUTBOX_URL);

var STATIC_CACHE = "skinportal-static-v1";
var OFFLINE_PAGES = [/^\/patients\/$/, /^\/patients\/\d+\/$/, /^\/patients\/\d+\/cases\/new\/$/];

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(STATIC_CACHE).then(function (cache) { return cache.addAll(PRECACHE); }).then(function () {
      return self.skipWaiting();
    })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name !== STATIC_CACHE && name !== Outbox.PAGE_CACHE;
      }).map(function (name) { return caches.delete(name); }));
    }).then(function () { return self.clients.claim(); })
  );
});

function keptPage(url) {
  return OFFLINE_PAGES.some(function (pattern) { return pattern.test(url.pathname); }) && !url.search;
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;

  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(
      caches.open(STATIC_CACHE).then(function (cache) {
        return cache.match(request).then(function (hit) {
          var fresh = fetch(request).then(function (response) {
            if (response.ok) cache.put(request, response.clone());
            return response;
          });
          return hit || fresh;
        });
      })
    );
    return;
  }

  if (request.mode === "navigate" && keptPage(url)) {
    event.respondWith(
      fetch(request).then(function (response) {
        // Not a sign-in redirect or an error page: only the page itself is kept.
        if (response.ok && !response.redirected) {
          var copy = response.clone();
          caches.open(Outbox.PAGE_CACHE).then(function (cache) { cache.put(url.pathname, copy); });
        }
        return response;
      }, function () {
        return caches.open(Outbox.PAGE_CACHE).then(function (cache) {
          return cache.match(url.pathname).then(function (hit) {
            return hit || Response.error();
          });
        });
      })
    );
  }
});

function notifyClients() {
  return self.clients.matchAll({ type: "window" }).then(function (clients) {
    clients.forEach(function (client) { client.postMessage({ type: "outbox-changed" }); });
  });
}

// Background Sync: the browser wakes this worker when the connection returns, even with
// no tab open. Drafts are sent with the CSRF token they were saved with; one refused
// because the session ended stays waiting for the next page load after sign-in.
self.addEventListener("sync", function (event) {
  if (event.tag !== Outbox.SYNC_TAG) return;
  event.waitUntil(
    Outbox.list().then(function (drafts) {
      var users = {};
      drafts.forEach(function (draft) { users[draft.user] = true; });
      return Object.keys(users).reduce(function (chain, user) {
        return chain.then(function () { return Outbox.flush(user, null, { changed: notifyClients }); });
      }, Promise.resolve());
    }).then(notifyClients)
  );
});

// A page asks for itself to be kept when its navigation did not come through this worker
// (the first visit, or one this worker claimed while activating).
self.addEventListener("message", function (event) {
  var data = event.data || {};
  // A page whose navigation began while this worker was activating is not claimed by
  // activate's claim(); it asks again.
  if (data.type === "claim") {
    event.waitUntil(self.clients.claim());
    return;
  }
  if (data.type === "keep-page" && typeof data.path === "string") {
    var url = new URL(data.path, self.location.origin);
    if (url.origin === self.location.origin && keptPage(url)) {
      event.waitUntil(caches.open(Outbox.PAGE_CACHE).then(function (cache) { return cache.add(url.pathname); }));
    }
  }
});
