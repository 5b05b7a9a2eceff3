/*
 * New-case form: collect photos from the camera or the gallery, scale big ones down in the
 * browser, and upload the form with a progress bar. Without JavaScript the same form posts
 * normally, so nothing here is required for it to work.
 */
(function () {
  "use strict";

  var form = document.getElementById("case-form");
  if (!form || !window.FormData || !window.XMLHttpRequest || !window.Promise || !window.URL || !window.indexedDB) {
    return;
  }
  document.documentElement.classList.add("js");

  var LONG_SIDE = parseInt(form.dataset.longSide, 10) || 1600; // never scale below this
  var JPEG_QUALITY = 0.9;
  var MAX_FILES = parseInt(form.dataset.maxFiles, 10) || 10;
  var MAX_BYTES = parseInt(form.dataset.maxBytes, 10) || 20 * 1024 * 1024;

  var inputs = Array.prototype.slice.call(form.querySelectorAll('input[type="file"][name="images"]'));
  var list = document.getElementById("photo-list");
  var template = document.getElementById("photo-item");
  var errors = document.getElementById("form-errors");
  var statusBox = document.getElementById("upload-status");
  var statusText = document.getElementById("upload-text");
  var progress = document.getElementById("upload-progress");
  var cancelButton = document.getElementById("upload-cancel");
  var submitButton = document.getElementById("case-submit");
  var cameraLabel = form.querySelector('label[for="photo-camera"]');
  var cameraText = cameraLabel ? cameraLabel.textContent : "";

  var photos = []; // {file, ready: Promise<File>, item, kind}
  var queue = Promise.resolve(); // photos are prepared one at a time to spare phone memory
  var request = null;

  var LANGUAGE = document.documentElement.lang || undefined;

  // A message from the page in the user's language (data-msg-*), with {name} filled in.
  function msg(name, fallback, values) {
    var text = form.dataset[name] || fallback;
    Object.keys(values || {}).forEach(function (key) {
      text = text.split("{" + key + "}").join(String(values[key]));
    });
    return text;
  }

  function formatNumber(value, digits) {
    try {
      return value.toLocaleString(LANGUAGE, { minimumFractionDigits: digits, maximumFractionDigits: digits });
    } catch (error) {
      return value.toFixed(digits);
    }
  }

  function formatBytes(bytes) {
    if (bytes >= 1024 * 1024) return formatNumber(bytes / (1024 * 1024), 1) + " MB";
    return formatNumber(Math.max(1, Math.round(bytes / 1024)), 0) + " KB";
  }

  function baseName(name) {
    return (name || "photo").replace(/\.[^.]+$/, "") || "photo";
  }

  function canvasToBlob(canvas) {
    if (canvas.convertToBlob) {
      return canvas.convertToBlob({ type: "image/jpeg", quality: JPEG_QUALITY });
    }
    return new Promise(function (resolve) {
      canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY);
    });
  }

  // Resolve to what will be uploaded: the original file, or a JPEG whose long side is
  // LONG_SIDE when the photo is bigger. EXIF orientation is applied while decoding, so
  // the scaled copy is upright. Anything the browser cannot decode (HEIC on most
  // browsers) is sent as it is; the server reads it.
  function prepare(file, info) {
    if (!window.createImageBitmap) {
      return Promise.resolve(file);
    }
    return createImageBitmap(file, { imageOrientation: "from-image" }).then(
      function (bitmap) {
        var width = bitmap.width;
        var height = bitmap.height;
        var longSide = Math.max(width, height);
        if (longSide <= LONG_SIDE) {
          bitmap.close && bitmap.close();
          info.textContent = width + " × " + height + " px · " + formatBytes(file.size);
          return file;
        }
        var scale = LONG_SIDE / longSide;
        var targetWidth = Math.round(width * scale);
        var targetHeight = Math.round(height * scale);
        var canvas;
        if (window.OffscreenCanvas) {
          canvas = new OffscreenCanvas(targetWidth, targetHeight);
        } else {
          canvas = document.createElement("canvas");
          canvas.width = targetWidth;
          canvas.height = targetHeight;
        }
        var context = canvas.getContext("2d");
        context.imageSmoothingEnabled = true;
        context.imageSmoothingQuality = "high";
        context.drawImage(bitmap, 0, 0, targetWidth, targetHeight);
        bitmap.close && bitmap.close();
        return canvasToBlob(canvas).then(function (blob) {
          if (!blob) return file;
          var scaled = new File([blob], baseName(file.name) + ".jpg", { type: "image/jpeg" });
          info.textContent =
            targetWidth + " × " + targetHeight + " px · " + formatBytes(scaled.size) +
            " (" + msg("msgScaledFrom", "scaled from {size}", { size: width + " × " + height + ", " + formatBytes(file.size) }) + ")";
          return scaled;
        });
      },
      function () {
        info.textContent = formatBytes(file.size) + " · " + msg("msgSentAsTaken", "sent as taken");
        return file;
      }
    ).catch(function () {
      return file;
    });
  }

  function refresh() {
    if (cameraLabel) {
      cameraLabel.textContent = photos.length ? cameraLabel.dataset.moreLabel || cameraText : cameraText;
    }
    photos.forEach(function (photo, index) {
      photo.item.querySelector(".photo-preview").alt = msg("msgPhotoNumber", "Photo {number}", { number: index + 1 });
      photo.item.querySelector(".photo-remove").setAttribute("aria-label", msg("msgRemovePhoto", "Remove photo {number}", { number: index + 1 }));
    });
  }

  // Each photo starts at the kind the clinic gave the same photo of its latest case (a clinic
  // with a dermatoscope gets "dermoscopic"); a new clinic starts with an overview, then close-ups.
  var lastKinds = (form.dataset.photoKinds || "").split(" ").filter(Boolean);
  function defaultKind(index) {
    if (lastKinds.length) return lastKinds[Math.min(index, lastKinds.length - 1)];
    return index === 0 ? "overview" : "close_up";
  }

  function addPhoto(file) {
    if (photos.length >= MAX_FILES) {
      showErrors([msg("msgTooMany", "At most {count} photos per case.", { count: MAX_FILES })]);
      return;
    }
    var item = template.content.firstElementChild.cloneNode(true);
    var preview = item.querySelector(".photo-preview");
    var info = item.querySelector(".photo-info");
    var kind = item.querySelector(".photo-kind");
    var url = URL.createObjectURL(file);
    preview.src = url;
    preview.onerror = function () {
      preview.removeAttribute("src");
    };
    kind.value = defaultKind(photos.length);
    kind.setAttribute("aria-label", msg("msgPhotoKind", "Kind of photo {number}", { number: photos.length + 1 }));

    var photo = { file: file, item: item, kind: kind, url: url };
    photo.ready = queue = queue.then(function () {
      return prepare(file, info);
    });
    item.querySelector(".photo-remove").addEventListener("click", function () {
      photos.splice(photos.indexOf(photo), 1);
      URL.revokeObjectURL(url);
      item.remove();
      refresh();
    });
    photos.push(photo);
    list.appendChild(item);
    refresh();
  }

  inputs.forEach(function (input) {
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, addPhoto);
      input.value = ""; // the same photo can be picked again; files travel via FormData
    });
  });

  function showErrors(messages) {
    errors.innerHTML = "";
    var heading = document.createElement("p");
    var strong = document.createElement("strong");
    strong.textContent = msg("msgNotSubmitted", "The case was not submitted.");
    heading.appendChild(strong);
    var ul = document.createElement("ul");
    messages.forEach(function (message) {
      var li = document.createElement("li");
      li.textContent = message;
      ul.appendChild(li);
    });
    errors.appendChild(heading);
    errors.appendChild(ul);
    errors.hidden = false;
    errors.focus();
  }

  function setBusy(busy) {
    submitButton.disabled = busy;
    inputs.forEach(function (input) {
      input.disabled = busy;
    });
    statusBox.hidden = false;
    cancelButton.hidden = !busy;
    statusBox.dataset.state = busy ? "busy" : "";
  }

  function fail(message) {
    request = null;
    setBusy(false);
    progress.value = 0;
    progress.hidden = true;
    statusBox.dataset.state = "error";
    statusText.textContent = message;
  }

  function leaveWarning(event) {
    event.preventDefault();
    event.returnValue = "";
  }

  function draftFrom(files) {
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (name === "images" || name === "image_kinds" || name === "csrfmiddlewaretoken") return;
      if (typeof value === "string") fields.push([name, value]);
    });
    var csrf = form.elements.csrfmiddlewaretoken;
    return {
      id: window.Outbox.newKey(), // the Idempotency-Key of every send of this case
      user: document.body.dataset.user,
      action: form.getAttribute("action") || window.location.pathname,
      label: form.dataset.draftLabel || document.title,
      fields: fields,
      photos: files.map(function (file, index) {
        return { blob: file, name: file.name, kind: photos[index].kind.value };
      }),
      csrf: csrf ? csrf.value : "",
      createdAt: Date.now(),
      state: "waiting",
      attempts: 0
    };
  }

  function clearPhotos() {
    photos.forEach(function (photo) {
      URL.revokeObjectURL(photo.url);
      photo.item.remove();
    });
    photos = [];
    refresh();
  }

  // Kept on the phone: the case is safe, and sent by the outbox when the signal returns.
  function keptOnPhone(message) {
    request = null;
    setBusy(false);
    progress.hidden = true;
    statusBox.dataset.state = "waiting";
    statusText.textContent = message;
    // The case is safe in the outbox: an empty form cannot be sent twice by a second tap.
    form.reset();
    clearPhotos();
    window.Outbox.page.registerSync();
    window.Outbox.page.render();
  }

  function send(files) {
    var tooBig = files.filter(function (file) { return file.size > MAX_BYTES; });
    if (tooBig.length) {
      fail("");
      statusBox.hidden = true;
      showErrors([msg("msgTooBig", "A photo is larger than {size}; take it again at a lower resolution.", { size: formatBytes(MAX_BYTES) })]);
      return;
    }
    var total = files.reduce(function (sum, file) { return sum + file.size; }, 0);
    var outbox = window.Outbox && window.Outbox.page;
    if (!outbox) {
      fail(form.dataset.msgNoStorage || "This browser cannot keep the case; submit again.");
      return;
    }
    var draft = draftFrom(files);
    var waitingText = form.dataset.msgWaiting ||
      "No connection: the case is saved on this phone, waiting to upload. It is sent automatically when the connection returns.";

    window.Outbox.put(draft).then(function () {
      if (navigator.onLine === false) {
        keptOnPhone(waitingText);
        return;
      }
      progress.hidden = false;
      window.addEventListener("beforeunload", leaveWarning);
      draft.state = "sending";
      return window.Outbox.send(draft, outbox.csrfToken(), function (sent, size) {
        var percent = size ? Math.min(100, Math.round((sent / size) * 100)) : 0;
        progress.value = percent;
        statusText.textContent =
          msg(files.length === 1 ? "msgUploadingOne" : "msgUploadingOther", "Uploading {count} photo(s)", { count: files.length }) + ": " +
          formatNumber(percent, 0) + " % (" + formatBytes(sent) + " / " + formatBytes(size || total) + ")";
      }, function (xhr) {
        request = xhr;
      }).then(function (answer) {
        window.removeEventListener("beforeunload", leaveWarning);
        var body = answer.body;
        if (answer.status === 201 && body && body.redirect) {
          return window.Outbox.remove(draft.id).then(function () {
            statusText.textContent = form.dataset.msgSubmitted || "Case submitted. Opening it…";
            window.location.assign(body.redirect);
          });
        }
        if ((answer.status === 400 || answer.status === 410 || answer.status === 422) && body && body.errors) {
          return window.Outbox.remove(draft.id).then(function () {
            var messages = [];
            Object.keys(body.errors).forEach(function (field) {
              messages = messages.concat(body.errors[field]);
            });
            fail(form.dataset.msgNotSaved || "Nothing was saved. Correct the form and submit again.");
            showErrors(messages);
          });
        }
        if (answer.status === 413) {
          return window.Outbox.remove(draft.id).then(function () {
            fail(form.dataset.msgTooLarge || "The photos are too large for the server. Remove some and submit again.");
          });
        }
        if (answer.status === 403) {
          draft.state = "waiting";
          draft.error = "sign-in";
          return window.Outbox.put(draft).then(function () {
            keptOnPhone(form.dataset.msgSignIn ||
              "Your session has ended: the case is saved on this phone and is sent once you sign in again.");
          });
        }
        draft.state = "waiting";
        draft.error = "server (" + answer.status + ")";
        return window.Outbox.put(draft).then(function () {
          keptOnPhone(form.dataset.msgServerError ||
            "The server could not save the case now; it is saved on this phone and sent again automatically.");
        });
      }, function (error) {
        window.removeEventListener("beforeunload", leaveWarning);
        if (error && error.message === "aborted") {
          return window.Outbox.remove(draft.id).then(function () {
            fail(form.dataset.msgCancelled || "Upload cancelled. Nothing was saved.");
          });
        }
        draft.state = "waiting";
        draft.error = "network";
        return window.Outbox.put(draft).then(function () {
          keptOnPhone(form.dataset.msgDropped ||
            "The connection dropped: the case is saved on this phone, waiting to upload. It is sent automatically when the connection returns.");
        });
      });
    }, function () {
      fail(form.dataset.msgNoStorage || "This phone could not keep the case (storage full?). Submit again.");
    });
  }

  cancelButton.addEventListener("click", function () {
    if (request) request.abort();
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (request) return;
    errors.hidden = true;
    var problems = [];
    if (!photos.length) problems.push(msg("msgNoPhoto", "Photos: take or choose at least one photo of the lesion."));
    var site = form.elements.body_site;
    if (site && !site.value) problems.push(msg("msgNoSite", "Body site: choose where the lesion is."));
    if (problems.length) {
      showErrors(problems);
      return;
    }
    setBusy(true);
    progress.value = 0;
    progress.hidden = false;
    statusText.textContent = msg("msgPreparing", "Preparing photos…");
    Promise.all(photos.map(function (photo) { return photo.ready; })).then(send, function () {
      fail(msg("msgUnreadable", "A photo could not be read. Remove it and try again."));
    });
  });
})();
