/* Behaviour shared by every page. No inline script or event-handler attribute anywhere: the
   Content-Security-Policy forbids them, so pages mark elements with data- attributes instead. */
(function () {
  "use strict";
  // <select data-autosubmit>: choosing an option sends its form (the language switch).
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.matches && target.matches("select[data-autosubmit]") && target.form) {
      target.form.submit();
    }
  });
  // <button data-print>: prints the page (credentials sheet, presentation).
  document.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("button[data-print]")) {
      window.print();
    }
  });
})();
