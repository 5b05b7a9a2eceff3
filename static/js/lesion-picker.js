// The case form's lesion picker: continuing a lesion fills in its body site (still editable).
(function () {
  "use strict";
  var site = document.getElementById("id_body_site");
  if (!site) return;
  document.querySelectorAll(".lesion-picker input[type=radio][data-body-site]").forEach(function (radio) {
    radio.addEventListener("change", function () {
      if (radio.checked) site.value = radio.dataset.bodySite;
    });
  });
})();
