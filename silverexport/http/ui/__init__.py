"""The dashboard's static files (package data): index.html, dashboard.css, dashboard.js."""
