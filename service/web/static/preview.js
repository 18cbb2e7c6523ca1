/* Editors' preview: renders the decision embedded in the page with the widget's own renderer. */
(() => {
  "use strict";
  const data = document.getElementById("herald-decision");
  const target = document.getElementById("herald-preview");
  if (data && target && window.Herald) window.Herald.render(target, JSON.parse(data.textContent));
})();
