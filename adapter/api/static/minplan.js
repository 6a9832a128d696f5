// "Skriv ut" on Min plan: the browser's print dialog (the print stylesheet hides the staff parts).
document.getElementById("print")?.addEventListener("click", () => window.print());
