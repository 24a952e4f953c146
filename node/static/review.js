// Community review: the keys a / d vote on ONE proof, the highlighted ("current") card. The
// server highlights one; moving the focus into another card (Tab, a click) makes that one
// current, so a key never votes on a proof the player is not looking at.
(function () {
  "use strict";

  function makeCurrent(card) {
    if (!card || card.classList.contains("current")) return;
    document.querySelectorAll(".review-card.current").forEach((other) => {
      other.classList.remove("current");
      other.querySelectorAll("[data-shortcut]").forEach((button) => {
        button.removeAttribute("data-key");
        button.removeAttribute("aria-keyshortcuts");
      });
    });
    card.classList.add("current");
    card.querySelectorAll("[data-shortcut]").forEach((button) => {
      button.dataset.key = button.dataset.shortcut;
      button.setAttribute("aria-keyshortcuts", button.dataset.shortcut);
    });
  }

  const cardOf = (target) => (target && target.closest ? target.closest(".review-card") : null);
  document.addEventListener("focusin", (event) => makeCurrent(cardOf(event.target)));
  document.addEventListener("pointerdown", (event) => makeCurrent(cardOf(event.target)));
  document.addEventListener("DOMContentLoaded", () => {
    const current = document.querySelector(".review-card.current");
    if (current && location.hash === "#" + current.id) current.scrollIntoView({ block: "start" });
  });
})();
