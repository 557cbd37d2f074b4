window.__memleakErrors=[];
window.onerror=function(msg,src,line,col){var t=String(msg)+" (line "+line+":"+col+")";
var b=document.body;if(b){b.dataset.errors=(b.dataset.errors?b.dataset.errors+"\n":"")+t;}
else{window.__memleakErrors.push(t);}return false;};
