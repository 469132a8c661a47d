"""`nas search` and the engine the designed runs share: settings, the Ray Tune runner, the Optuna searcher, progress,
samplers, the zero-cost pre-screen, the trial function, and the batch engine of `nas audit`, `nas study` and
`nas compare`. Calling the package runs a search: ``nas.search(budget=1_500_000)`` is :func:`nas.api.search`
(``nas/__init__.py`` makes it callable)."""
