// The async snippet: paste it into the page's <head> with your collector and write key. The
// collector serves the tracker itself at {host}/cartwatch.js, so the script src and `host`
// name the same origin. It defines window.cartwatch at once, so calls made before the script
// has loaded are queued and run, in order, when it has.
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
}(window, document, 'https://collect.example/cartwatch.js');
cartwatch.load({ writeKey: 'YOUR_WRITE_KEY', host: 'https://collect.example' });
cartwatch.page();
