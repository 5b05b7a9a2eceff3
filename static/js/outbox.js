/*
 * The case outbox: cases kept on this phone until the server has them.
 *
 * A case submitted without a connection (or whose upload dropped) is stored in IndexedDB:
 * the form fields, the downscaled photos and an Idempotency-Key made when it was first
 * submitted. It is sent again automatically (Background Sync where the browser has it,
 * otherwise on the "online" event and on the next page load), always with the same key,
 * so a resend that reaches the server twice still makes one case. A draft is deleted once
 * the server has answered 201, and on sign-out.
 *
 * Loaded by every page (window) and by the service worker (importScripts): it touches the
 * DOM only through the page part at the bottom.
 */
(function (global) {
  "use strict";

  var DB_NAME = "skinportal";
  var STORE = "case-drafts";
  var SYNC_TAG = "case-outbox";
  var PAGE_CACHE = "skinportal-pages-v1";

  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = global.indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () {
        var store = request.result.createObjectStore(STORE, { keyPath: "id" });
        store.createIndex("user", "user");
      };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }

  function withStore(mode, work) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var result = work(tx.objectStore(STORE));
        tx.oncomplete = function () {
          db.close();
          resolve(result && "result" in result ? result.result : result);
        };
        tx.onerror = tx.onabort = function () {
          db.close();
          reject(tx.error);
        };
      });
    });
  }

  function newKey() {
    if (global.crypto && global.crypto.randomUUID) return global.crypto.randomUUID();
    var bytes = new Uint8Array(16);
    global.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return (b + 256).toString(16).slice(1); }).join("");
  }

  var Outbox = {
    SYNC_TAG: SYNC_TAG,
    PAGE_CACHE: PAGE_CACHE,
    newKey: newKey,

    put: function (draft) {
      return withStore("readwrite", function (store) { store.put(draft); });
    },

    remove: function (id) {
      return withStore("readwrite", function (store) { store.delete(id); });
    },

    list: function (user) {
      return withStore("readonly", function (store) {
        return user ? store.index("user").getAll(user) : store.getAll();
      }).then(function (drafts) {
        return (drafts || []).sort(function (a, b) { return a.createdAt - b.createdAt; });
      });
    },

    // Everything this phone keeps for the portal: drafts and cached pages (sign-out).
    clearAll: function () {
      var drafts = withStore("readwrite", function (store) { store.clear(); });
      var pages = global.caches ? global.caches.delete(PAGE_CACHE) : Promise.resolve();
      return Promise.all([drafts, pages]);
    },

    formData: function (draft) {
      var data = new FormData();
      draft.fields.forEach(function (pair) { data.append(pair[0], pair[1]); });
      draft.photos.forEach(function (photo) {
        data.append("images", photo.blob, photo.name);
        data.append("image_kinds", photo.kind);
      });
      return data;
    },

    /*
     * Send one draft. Resolves to {status, body}; rejects on a network failure. With
     * XMLHttpRequest (pages) it reports upload progress; the service worker uses fetch.
     */
    send: function (draft, csrfToken, onProgress, onStart) {
      var data = Outbox.formData(draft);
      var headers = {
        "X-Requested-With": "XMLHttpRequest",
        "Accept": "application/json",
        "Idempotency-Key": draft.id,
        "X-Portal-User": draft.user,
        "X-CSRFToken": csrfToken || draft.csrf || ""
      };
      if (global.XMLHttpRequest && onProgress) {
        return new Promise(function (resolve, reject) {
          var xhr = new XMLHttpRequest();
          xhr.open("POST", draft.action);
          Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
          xhr.upload.addEventListener("progress", function (event) {
            if (event.lengthComputable) onProgress(event.loaded, event.total);
          });
          xhr.addEventListener("load", function () {
            var body = null;
            try { body = JSON.parse(xhr.responseText); } catch (error) { body = null; }
            resolve({ status: xhr.status, body: body });
          });
          xhr.addEventListener("error", function () { reject(new Error("network")); });
          xhr.addEventListener("abort", function () { reject(new Error("aborted")); });
          if (onStart) onStart(xhr);
          xhr.send(data);
        });
      }
      return fetch(draft.action, { method: "POST", body: data, headers: headers, credentials: "same-origin" })
        .then(function (response) {
          return response.json().catch(function () { return null; }).then(function (body) {
            return { status: response.status, body: body };
          });
        });
    },

    /*
     * Send every waiting draft of `user`, one at a time, under a lock shared by the tabs and
     * the service worker. `hooks.progress(draft, loaded, total)`, `hooks.changed()`.
     * A draft the server refuses for good (400, 410, 413, 422) is kept as "refused" with the
     * reason, for the nurse to see; 403 (signed out), 409 (someone else signed in on this
     * phone) and 5xx stay waiting.
     */
    flush: function (user, csrfToken, hooks) {
      hooks = hooks || {};
      var run = function () {
        return Outbox.list(user).then(function (drafts) {
          var waiting = drafts.filter(function (d) { return d.state !== "refused"; });
          return waiting.reduce(function (chain, draft) {
            return chain.then(function () {
              if (global.navigator && global.navigator.onLine === false) return;
              draft.state = "sending";
              draft.attempts = (draft.attempts || 0) + 1;
              return Outbox.put(draft).then(function () {
                hooks.changed && hooks.changed();
                return Outbox.send(draft, csrfToken, hooks.progress && function (loaded, total) {
                  hooks.progress(draft, loaded, total);
                });
              }).then(function (answer) {
                if (answer.status === 201) return Outbox.remove(draft.id);
                if ([400, 410, 413, 422].indexOf(answer.status) !== -1) {
                  draft.state = "refused";
                  draft.error = answer.body && answer.body.errors ? flatten(answer.body.errors) : "refused (" + answer.status + ")";
                } else {
                  draft.state = "waiting";
                  draft.error = answer.status === 403 || answer.status === 409 ? "sign-in" : "server (" + answer.status + ")";
                }
                return Outbox.put(draft);
              }, function () {
                draft.state = "waiting";
                draft.error = "network";
                return Outbox.put(draft);
              }).then(function () {
                hooks.changed && hooks.changed();
              });
            });
          }, Promise.resolve());
        });
      };
      if (global.navigator && global.navigator.locks) {
        return global.navigator.locks.request(SYNC_TAG, run);
      }
      return run();
    }
  };

  function flatten(errors) {
    var messages = [];
    Object.keys(errors).forEach(function (field) { messages = messages.concat(errors[field]); });
    return messages.join(" ");
  }

  global.Outbox = Outbox;

  // --- The page part: header count, the waiting list, sending, sign-out --------------------
  if (typeof document === "undefined") return;

  var body = document.body;
  var user = body && body.dataset.user;
  if (!user || !global.indexedDB) {
    // Signed out (the login page): nothing of the last user's stays on this phone.
    // Drafts stay: they are sent once their user signs in again.
    if (body && body.dataset.signedOut === "true" && global.caches) global.caches.delete(PAGE_CACHE);
    return;
  }

  var box = document.getElementById("outbox");
  var countEl = document.getElementById("outbox-count");
  var listEl = document.getElementById("outbox-list");
  var retryButton = document.getElementById("outbox-retry");
  var progressOf = {};
  var flushing = null;

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function stateText(draft) {
    var t = body.dataset;
    if (draft.state === "sending") {
      var p = progressOf[draft.id];
      return (t.outboxSending || "Sending") + (p != null ? " " + p + " %" : "…");
    }
    if (draft.state === "refused") return (t.outboxRefused || "Not accepted:") + " " + (draft.error || "");
    if (draft.error === "sign-in") return t.outboxSignIn || "Waiting: sign in again to send it";
    if (draft.attempts) return (t.outboxRetry || "Waiting to upload; will retry") + " (" + draft.attempts + ")";
    return t.outboxWaiting || "Waiting to upload";
  }

  function language() {
    return document.documentElement.lang || undefined;
  }

  // The page's translated "one" or "other" form of a message (data-<name>-one, data-<name>-other),
  // chosen by the language's plural rules, with {count} filled in.
  function plural(data, name, count, fallback) {
    var form = "other";
    try {
      form = new Intl.PluralRules(language()).select(count) === "one" ? "one" : "other";
    } catch (error) { /* an unknown language: "other" */ }
    var text = data[name + (form === "one" ? "One" : "Other")] || data[name + "Other"] || fallback;
    return text.replace("{count}", String(count));
  }

  function render() {
    return Outbox.list(user).then(function (drafts) {
      if (!box) return drafts;
      box.hidden = drafts.length === 0;
      countEl.textContent = String(drafts.length);
      listEl.innerHTML = "";
      var t = body.dataset;
      drafts.forEach(function (draft) {
        var li = document.createElement("li");
        li.className = "outbox-item";
        li.dataset.state = draft.state;
        var title = document.createElement("strong");
        title.textContent = draft.label;
        var when = document.createElement("span");
        when.className = "small muted";
        when.textContent = " · " + new Date(draft.createdAt).toLocaleString(language()) + " · " +
          plural(t, "outboxPhotos", draft.photos.length, "{count} photo(s)");
        var state = document.createElement("p");
        state.className = "small outbox-state";
        state.textContent = stateText(draft);
        li.appendChild(title);
        li.appendChild(when);
        li.appendChild(state);
        if (draft.state === "sending" && progressOf[draft.id] != null) {
          var bar = document.createElement("progress");
          bar.max = 100;
          bar.value = progressOf[draft.id];
          li.appendChild(bar);
        }
        if (draft.state === "refused") {
          var discard = document.createElement("button");
          discard.type = "button";
          discard.className = "button button-quiet";
          discard.textContent = body.dataset.outboxDiscard || "Delete from this phone";
          discard.addEventListener("click", function () { Outbox.remove(draft.id).then(render); });
          li.appendChild(discard);
        }
        listEl.appendChild(li);
      });
      return drafts;
    });
  }

  function flushNow() {
    if (flushing) return flushing;
    if (navigator.onLine === false) return render();
    flushing = Outbox.flush(user, csrfToken(), {
      progress: function (draft, loaded, total) {
        progressOf[draft.id] = Math.min(100, Math.round((loaded / total) * 100));
        render();
      },
      changed: render
    }).then(render, render).then(function (drafts) {
      flushing = null;
      progressOf = {};
      document.dispatchEvent(new CustomEvent("outbox:flushed", { detail: { waiting: drafts ? drafts.length : 0 } }));
    });
    return flushing;
  }

  function registerSync() {
    if (!navigator.serviceWorker) return Promise.resolve();
    return navigator.serviceWorker.ready.then(function (registration) {
      if (registration.sync) return registration.sync.register(SYNC_TAG).catch(function () {});
    });
  }

  Outbox.page = { render: render, flush: flushNow, registerSync: registerSync, user: user, csrfToken: csrfToken };

  window.addEventListener("online", flushNow);
  if (retryButton) retryButton.addEventListener("click", flushNow);
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "outbox-changed") render();
    });
  }

  // Sign-out deletes the drafts and the pages kept for offline use, after a warning when
  // some cases have not reached the server yet.
  Array.prototype.forEach.call(document.querySelectorAll("form.sign-out"), function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.cleared === "true") return;
      event.preventDefault();
      Outbox.list(user).then(function (drafts) {
        if (drafts.length && !window.confirm(
          plural(body.dataset, "outboxSignOutWarning", drafts.length,
            "{count} case(s) have not been uploaded yet; signing out deletes them from this phone. Sign out anyway?"))) {
          return;
        }
        return Outbox.clearAll().then(function () {
          form.dataset.cleared = "true";
          form.submit();
        });
      });
    });
  });

  render().then(flushNow);
})(typeof self !== "undefined" ? self : this);
