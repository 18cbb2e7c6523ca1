/* Herald widget: shows the notices a reader must see inside every [data-herald-publisher] element.
 *
 *   <div data-herald-publisher="rferl" data-herald-tags="russia,kosovo" data-herald-language="en"></div>
 *   <script src="https://herald.example.org/widget.js" async></script>
 *
 * Optional on each element: data-herald-section, -tags (comma-separated), -language (the article's),
 * -type, -id, -url, -heading (2 to 6, the heading level of a notice's title; default 2).
 * Optional on the script tag: data-herald-timeout (milliseconds, default 3000) and data-herald-base
 * (Herald's address when this file is served from elsewhere; default: where this file came from).
 *
 * One element is asked for with GET /v1/decisions, several with one POST /v1/decisions/batch; the
 * reader is the browser (its address and Accept-Language). When Herald is unreachable, slow or
 * answers an error, nothing changes on the page and a warning goes to the console.
 * On success <html data-herald-effects="..."> lists the effects (space-separated) for the site's CSS.
 * No dependencies, no build step. window.Herald.render(element, decision) renders one decision. */
(() => {
  "use strict";

  const script = document.currentScript;
  const FIELDS = ["publisher", "section", "tags", "language", "type", "id", "url"];
  const ROLES = { legal: "alert", warning: "alert", info: "note" };
  const MAX_BATCH = 100;
  const STYLE_ID = "herald-widget-style";
  // Zero specificity (:where), so any rule of the page wins; colours are custom properties.
  const STYLE = `
:where(.herald-notice){box-sizing:border-box;margin:0 0 var(--herald-gap,.75em);
 padding:var(--herald-padding,.75em 1em);border-inline-start:var(--herald-border-width,4px) solid var(--herald-accent);
 border-radius:var(--herald-radius,4px);background:var(--herald-background);color:var(--herald-text,#1d2939);
 font:var(--herald-font,inherit);line-height:1.45}
:where(.herald-notice[data-severity=legal]){--herald-accent:var(--herald-legal,#b42318);
 --herald-background:var(--herald-legal-background,#fef3f2)}
:where(.herald-notice[data-severity=warning]){--herald-accent:var(--herald-warning,#b54708);
 --herald-background:var(--herald-warning-background,#fffaeb)}
:where(.herald-notice[data-severity=info]){--herald-accent:var(--herald-info,#175cd3);
 --herald-background:var(--herald-info-background,#eff8ff)}
:where(.herald-notice__title){margin:0 0 .3em;font-size:var(--herald-title-size,1.05em);font-weight:700}
:where(.herald-notice__body){margin:0}
:where(.herald-notice__more){margin:.4em 0 0}
:where(.herald-notice__link){color:var(--herald-link,var(--herald-accent))}`;

  let counter = 0;

  function setting(name) {
    return script ? script.getAttribute(`data-herald-${name}`) : null;
  }

  function baseUrl() {
    const given = setting("base");
    if (given) return new URL(given.endsWith("/") ? given : `${given}/`, document.baseURI).href;
    if (script && script.src) return new URL(".", script.src).href;
    throw new Error("cannot tell Herald's address: load widget.js with <script src> or set data-herald-base");
  }

  function timeout() {
    const ms = Number.parseInt(setting("timeout") || "", 10);
    return Number.isFinite(ms) && ms > 0 ? ms : 3000;
  }

  function article(element) {
    const fields = {};
    for (const name of FIELDS) {
      const value = (element.getAttribute(`data-herald-${name}`) || "").trim();
      if (value) fields[name] = value;
    }
    if (fields.tags) fields.tags = fields.tags.split(",").map((t) => t.trim()).filter(Boolean);
    return fields;
  }

  async function fetchJson(url, init) {
    const abort = new AbortController();
    const ms = timeout();
    const timer = setTimeout(() => abort.abort(), ms);
    try {
      const response = await fetch(url, { ...init, signal: abort.signal, credentials: "omit", mode: "cors" });
      if (!response.ok) throw new Error(`${url} answered ${response.status}`);
      return await response.json();
    } catch (error) {
      if (error && error.name === "AbortError") throw new Error(`${url} did not answer within ${ms} ms`);
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async function decide(elements) {
    const base = baseUrl();
    const articles = elements.map(article);
    if (articles.length === 1) {
      const query = new URLSearchParams();
      for (const [name, value] of Object.entries(articles[0])) {
        query.set(name, Array.isArray(value) ? value.join(",") : value);
      }
      return [await fetchJson(`${base}v1/decisions?${query}`, { method: "GET" })];
    }
    const chunks = [];
    for (let i = 0; i < articles.length; i += MAX_BATCH) chunks.push(articles.slice(i, i + MAX_BATCH));
    const answers = await Promise.all(
      chunks.map((chunk) =>
        fetchJson(`${base}v1/decisions/batch`, {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ articles: chunk }), // no reader: Herald takes the caller's own
        }).then((answer) => {
          if (!answer || !Array.isArray(answer.decisions) || answer.decisions.length !== chunk.length) {
            throw new Error("the batch answer does not match the articles asked for");
          }
          return answer.decisions;
        }),
      ),
    );
    return answers.flat();
  }

  function addStyle() {
    if (document.getElementById(STYLE_ID)) return;
    const style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = STYLE;
    const head = document.head || document.documentElement;
    head.insertBefore(style, head.firstChild); // first, so the page's own styles come after it
  }

  function safeLink(link) {
    if (!link) return null;
    try {
      const url = new URL(link);
      return url.protocol === "https:" || url.protocol === "http:" ? url : null;
    } catch (_) {
      return null;
    }
  }

  function noticeElement(notice, level) {
    const id = `herald-notice-${++counter}`;
    const box = document.createElement("div");
    box.className = "herald-notice";
    box.setAttribute("role", ROLES[notice.severity] || "note");
    box.setAttribute("aria-labelledby", `${id}-title`);
    box.setAttribute("data-notice", notice.id);
    box.setAttribute("data-severity", notice.severity);
    box.setAttribute("data-placement", notice.placement || "");
    box.lang = notice.language;
    box.dir = "auto";
    const title = document.createElement(`h${level}`);
    title.className = "herald-notice__title";
    title.id = `${id}-title`;
    title.textContent = notice.title;
    const body = document.createElement("p");
    body.className = "herald-notice__body";
    body.textContent = notice.body;
    box.append(title, body);
    const url = safeLink(notice.link);
    if (url) {
      const more = document.createElement("p");
      more.className = "herald-notice__more";
      const anchor = document.createElement("a");
      anchor.className = "herald-notice__link";
      anchor.href = url.href;
      anchor.textContent = url.host + (url.pathname === "/" ? "" : url.pathname);
      more.append(anchor);
      box.append(more);
    }
    return box;
  }

  /** Replace `element`'s content with the notices of `decision` (an answer of /v1/decisions or
   * /v1/explain); returns how many were rendered. */
  function render(element, decision) {
    addStyle();
    const notices = (decision && decision.notices) || [];
    const asked = Number.parseInt(element.getAttribute("data-herald-heading") || "2", 10);
    const level = asked >= 2 && asked <= 6 ? asked : 2;
    element.replaceChildren(...notices.map((notice) => noticeElement(notice, level)));
    element.setAttribute("data-herald-state", notices.length ? "shown" : "none");
    return notices.length;
  }

  function setEffects(decisions) {
    const effects = new Set(decisions.flatMap((d) => d.effects || []));
    document.documentElement.setAttribute("data-herald-effects", [...effects].sort().join(" "));
  }

  /** Ask Herald about every element not asked about yet, and render the answers. */
  async function run(root = document) {
    const elements = [...root.querySelectorAll("[data-herald-publisher]")].filter(
      (element) => !element.hasAttribute("data-herald-state"),
    );
    if (!elements.length) return [];
    for (const element of elements) element.setAttribute("data-herald-state", "loading");
    try {
      const decisions = await decide(elements);
      elements.forEach((element, i) => render(element, decisions[i]));
      setEffects(decisions);
      return decisions;
    } catch (error) {
      for (const element of elements) element.setAttribute("data-herald-state", "failed");
      console.warn(`Herald: no notices shown (${error && error.message ? error.message : error})`);
      return [];
    }
  }

  window.Herald = Object.freeze({ render, run });
  if (!window.fetch || !window.AbortController) {
    console.warn("Herald: this browser cannot call Herald (no fetch); no notices shown");
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", () => run());
  } else {
    run();
  }
})();
