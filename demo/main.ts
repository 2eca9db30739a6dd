// The demo (issue "Wiring it together") has not landed yet; this says so instead of faking output.
console.log('hotpath demo: coming — the end-to-end workload lands with the wiring issue. Run `npm test` meanwhile.');
