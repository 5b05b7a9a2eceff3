// The referral letter page: a Print button (shown only where JavaScript runs).
(function () {
  "use strict";
  var button = document.getElementById("letter-print");
  if (!button || !window.print) return;
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
})();
