(function(){var b=document.body;
if(window.__memleakErrors.length){b.dataset.errors=window.__memleakErrors.join("\n");}
var bar=document.querySelector(".filter");var q=document.getElementById("q");
function apply(){var text=q?q.value.toLowerCase():"";var on={};
document.querySelectorAll(".filter input[data-v]").forEach(function(c){on[c.dataset.v]=c.checked;});
document.querySelectorAll("#tests-table tbody tr").forEach(function(r){
var name=(r.querySelector(".tname")||r).getAttribute("title")||"";
r.hidden=!(on[r.dataset.verdict]!==false&&name.toLowerCase().indexOf(text)>=0);});}
if(bar){bar.hidden=false;bar.addEventListener("input",apply);bar.addEventListener("change",apply);}
function openHash(){var id=location.hash.slice(1);if(!id)return;
var el=document.getElementById(id);if(el&&el.tagName==="DETAILS"){el.open=true;}}
window.addEventListener("hashchange",openHash);openHash();
b.dataset.charts=String(document.querySelectorAll("svg.chart").length);
b.dataset.status="ok";})();
