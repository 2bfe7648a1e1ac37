// The parts of a page marked data-refresh="SECONDS" follow a fresh copy of the page (a live list, a phone's
// conversation): every few seconds the page is fetched again and the part replaced when it changed.
"use strict";
document.querySelectorAll("[data-refresh][id]").forEach((part) => {
  const every = Math.max(1, Number(part.dataset.refresh) || 2) * 1000;
  const refresh = async () => {
    try {
      const response = await fetch(location.href, { cache: "no-store" });
      if (!document.hidden && response.ok && response.url === location.href) {
        const html = await response.text();
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById(part.id);
        if (fresh && fresh.innerHTML !== part.innerHTML) part.innerHTML = fresh.innerHTML;
      }
    } catch (error) {
      // the gateway is restarting, say: try again at the next turn
    }
    setTimeout(refresh, every);
  };
  setTimeout(refresh, every);
});
