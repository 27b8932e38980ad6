"""`harness init`: read an app (app), write the article's five variants for it
(dockerfiles) and a variants.toml listing them and the app's own Dockerfiles (write)."""
