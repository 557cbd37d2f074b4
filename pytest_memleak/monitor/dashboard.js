(function(){var b=document.body,n=0,es=null;
if(window.__memleakErrors.length){b.dataset.errors=window.__memleakErrors.join("\n");}
document.addEventListener("securitypolicyviolation",function(e){
b.dataset.errors=(b.dataset.errors?b.dataset.errors+"\n":"")+"CSP: "+e.violatedDirective+" "+e.blockedURI;});
function text(id,t){var e=document.getElementById(id);if(e&&e.textContent!==t){e.textContent=t;}}
function put(id,html){var box=document.getElementById(id);if(!box){return;}
var was=Array.prototype.map.call(box.querySelectorAll("details"),function(d){return d.open;});
var doc=new DOMParser().parseFromString("<!DOCTYPE html><body>"+html+"</body>","text/html");
doc.querySelectorAll("details>template").forEach(function(t){var d=t.parentNode;
d.replaceChild(t.content,t);d.open=true;});
var frag=document.createDocumentFragment();
Array.prototype.slice.call(doc.body.childNodes).forEach(function(c){frag.appendChild(document.importNode(c,true));});
box.replaceChildren(frag);var now=box.querySelectorAll("details");
if(now.length===was.length){now.forEach(function(d,i){d.open=was[i];});}}
function cards(list){list.forEach(function(c){var e=document.getElementById("c-"+c.key);if(!e){return;}
var num=e.querySelector(".num");if(num&&num.textContent!==c.value){num.textContent=c.value;}
e.classList.toggle("hot",!!c.hot);});}
function alerts(list){var ul=document.getElementById("alerts");if(!ul){return;}
var items=list.map(function(a){var li=document.createElement("li");li.className="a-"+a.severity;
li.textContent=a.line;return li;});
if(!items.length){var li=document.createElement("li");li.className="muted";li.textContent="none so far";items=[li];}
ul.replaceChildren.apply(ul,items);}
function update(d){n+=1;text("subtitle",d.subtitle);cards(d.cards);
var ban=document.getElementById("banner");if(ban){ban.className="banner "+d.banner.cls;ban.textContent=d.banner.text;}
alerts(d.alerts);put("live",d.live);var tb=document.getElementById("tests-box");
if(tb){tb.hidden=!d.table;if(d.table){put("table",d.table);}}
text("conn","live · updated "+new Date().toLocaleTimeString());
b.dataset.updates=String(n);b.dataset.samples=String(d.samples);
b.dataset.charts=String(document.querySelectorAll("svg.chart").length);}
if(window.EventSource){es=new EventSource("/api/events");
es.addEventListener("update",function(ev){update(JSON.parse(ev.data));});
es.addEventListener("alert",function(){b.dataset.alerts=String((+b.dataset.alerts||0)+1);});
es.addEventListener("end",function(ev){es.close();var d=JSON.parse(ev.data);
text("conn","ended: "+d.reason);b.dataset.ended="1";});
es.onerror=function(){if(b.dataset.ended!=="1"){text("conn","connection lost, retrying…");}};}
b.dataset.status="ok";})();
