(function(){var b=document.body;
if(window.__memleakErrors.length){b.dataset.errors=window.__memleakErrors.join("\n");}
var bar=document.querySelector(".filter");var q=document.getElementById("q");
function apply(){var text=q?q.value.toLowerCase():"";var on={};
document.querySelectorAll(".filter input[data-v]").forEach(function(c){on[c.dataset.v]=c.checked;});
document.querySelectorAll("#tests-table tbody tr").forEach(function(r){
var n=r.querySelector(".tname")||r;var name=n.getAttribute("title")||n.textContent||"";
r.hidden=!(on[r.dataset.verdict]!==false&&name.toLowerCase().indexOf(text)>=0);});}
if(bar){bar.hidden=false;bar.addEventListener("input",apply);bar.addEventListener("change",apply);}
function mark(){b.dataset.charts=String(document.querySelectorAll("svg.chart").length);
b.dataset.lazy=String(document.querySelectorAll("details.test>template").length);
var e=document.documentElement;b.dataset.overflow=String(Math.max(0,e.scrollWidth-e.clientWidth));}
function fill(d){var t=d.querySelector(":scope>template");
if(t){d.replaceChild(document.importNode(t.content,true),t);mark();}}
document.addEventListener("toggle",function(ev){var d=ev.target;
if(d.tagName==="DETAILS"&&d.open){fill(d);}},true);
function openHash(){var id=location.hash.slice(1);if(!id)return;
var el=document.getElementById(id);if(el&&el.tagName==="DETAILS"){fill(el);el.open=true;}}
window.addEventListener("hashchange",openHash);openHash();mark();
b.dataset.status="ok";})();
