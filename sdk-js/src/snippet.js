// The async snippet: paste it into the page's <head> with your script URL, write key and
// collector. It defines window.cartwatch at once, so calls made before cartwatch.min.js has
// loaded are queued and run, in order, when it has.
!function (w, d, src) {
  var c = (w.cartwatch = w.cartwatch || {});
  if (c.load || c.anonymousId) return; // already set up, or already loaded
  c.q = [];
  'page track identify productViewed productAdded productRemoved cartUpdated checkoutStarted orderCompleted reset optOut optIn flush'
    .split(' ')
    .forEach(function (m) {
      c[m] = function () {
        c.q.push([m, [].slice.call(arguments)]);
      };
    });
  c.load = function (options) {
    if (c.o) return; // one script, even when two copies of the snippet call load
    c.o = options;
    var s = d.createElement('script');
    s.async = true;
    s.src = src;
    d.head.appendChild(s);
  };
}(window, document, '/cartwatch.min.js');
cartwatch.load({ writeKey: 'YOUR_WRITE_KEY', host: 'https://collect.example' });
cartwatch.page();
