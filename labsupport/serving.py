"""Real model servers behind a weighted, sticky router (lesson 06).

The strategies of :mod:`labsupport.rollout` talk to a *target* with two methods, ``health`` and
``serve``. :class:`labsupport.traffic.Simulator` is one; :class:`Cluster` is another, made of
real HTTP servers on loopback ports:

* one small Starlette app per model version (:func:`model_app`) with ``GET /health`` (503 when
  the version is unhealthy) and ``POST /predict`` (a JSON row of features in, a label out; a
  request fails with HTTP 500 at the version's error rate, and no request is answered sooner
  than a latency drawn from the version's latency model: a slow version is slow on the wire);
* a router (:func:`router_app`) that sends each ``POST /predict`` to a version chosen by the
  salted stable hash of the request's ``user_id`` (:mod:`labsupport.assignment`), and can mirror
  every request to a shadow version whose answers it logs but never returns (nor waits for);
* each app served by uvicorn on port 0 (the system picks a free port) in a background thread,
  inside a context manager that always stops it.

Latency here is measured, not simulated: the round trip through the router as the client saw it,
with requests sent a few at a time (``concurrency``) as concurrent users send them. It is the
version's drawn latency plus what HTTP, the router and a busy machine add, never less.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterator, Mapping, Sequence

import httpx
import numpy as np
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from labsupport import assignment, traffic


def model_app(version: traffic.Version, seed: int = 0,
              population: traffic.Population | None = None) -> Starlette:
    """The HTTP server of one model version: ``/health`` and ``/predict``.

    With ``population``, the server predicts once on the users' inputs when it starts and
    answers a request that names a known ``user_id`` from those answers, as the simulator does
    (:class:`labsupport.traffic.Simulator`): the time a prediction takes is then the version's
    latency model, not how busy the machine's processors are, which would slow a larger model
    far more on a loaded machine than its latency model says. Other requests are predicted
    from their ``features``.

    Each ``/predict`` draws, from a generator seeded with ``seed``, a latency from the version's
    model (log-normal: ``latency_ms * exp(latency_spread * z)``, as the simulator draws it) and
    whether it fails (``error_rate``). The answer, or the HTTP 500, is sent once that latency has
    passed since the request arrived (an ``asyncio.sleep`` for what the prediction left of it),
    so the version's latency model is what a client measures, plus the network's share. The
    prediction runs in a worker thread, so requests in flight at once do not wait for each
    other's predictions.
    """
    draws = np.random.default_rng(seed)
    known: dict[object, int] = {} if population is None else dict(zip(
        population.user_ids.tolist(), np.asarray(version.model.predict(population.X)).tolist()))

    async def health(_request: Request) -> JSONResponse:
        status = 200 if version.healthy else 503
        return JSONResponse({"version": version.name, "healthy": version.healthy},
                            status_code=status)

    async def predict(request: Request) -> JSONResponse:
        arrived = time.perf_counter()
        body = await request.json()
        latency_s = version.latency_ms * math.exp(version.latency_spread *
                                                  draws.standard_normal()) / 1000
        if draws.random() < version.error_rate:
            answer = JSONResponse({"version": version.name, "error": "internal error"},
                                  status_code=500)
        elif body.get("user_id") in known:
            answer = JSONResponse({"version": version.name,
                                   "prediction": int(known[body["user_id"]])})
        else:
            row = np.asarray(body["features"], dtype=float).reshape(1, -1)
            # In a worker thread: a prediction run on the event loop would hold every other
            # request to this server until it is done, and they would queue one behind another.
            label = int(np.asarray((await asyncio.to_thread(version.model.predict, row)))[0])
            answer = JSONResponse({"version": version.name, "prediction": label})
        await asyncio.sleep(max(0.0, latency_s - (time.perf_counter() - arrived)))
        return answer

    return Starlette(routes=[Route("/health", health), Route("/predict", predict,
                                                             methods=["POST"])])


def router_app(backends: Mapping[str, str]) -> Starlette:
    """A router splitting ``POST /predict`` over ``backends`` (name -> base URL) by weight.

    ``PUT /config`` sets ``{"weights": {...}, "salt": "...", "mirror_to": name or null}`` and
    clears the mirror log; ``GET /mirror-log`` returns what the shadow answered, once every
    mirrored request has been answered. The user's answer never waits for the shadow's.
    """
    state: dict = {"weights": {next(iter(backends)): 1.0}, "salt": "rollout",
                   "mirror_to": None, "log": [], "client": None, "mirrored": set()}

    def client() -> httpx.AsyncClient:
        if state["client"] is None:
            state["client"] = httpx.AsyncClient(timeout=10.0)
        return state["client"]

    async def configure(request: Request) -> JSONResponse:
        body = await request.json()
        unknown = sorted(set(body["weights"]) - set(backends) |
                         ({body.get("mirror_to")} - {None} - set(backends)))
        if unknown:
            return JSONResponse({"error": f"unknown versions {unknown}"}, status_code=400)
        try:
            assignment.assign([0], body.get("salt", "rollout"), body["weights"])  # validates
        except (TypeError, ValueError) as error:
            return JSONResponse({"error": str(error)}, status_code=400)
        state.update(weights=dict(body["weights"]), salt=body.get("salt", "rollout"),
                     mirror_to=body.get("mirror_to"), log=[])
        return JSONResponse({"ok": True})

    async def mirror(body: dict, log: list) -> None:
        shadow = await client().post(f"{backends[state['mirror_to']]}/predict", json=body)
        log.append({"request": body.get("request"), "user_id": body["user_id"],
                    "status": shadow.status_code, **shadow.json()})

    async def predict(request: Request) -> JSONResponse:
        body = await request.json()
        name = str(assignment.assign([body["user_id"]], state["salt"], state["weights"])[0])
        if state["mirror_to"] is not None:  # sent alongside, in the background
            task = asyncio.create_task(mirror(body, state["log"]))
            state["mirrored"].add(task)
            task.add_done_callback(state["mirrored"].discard)
        answer = await client().post(f"{backends[name]}/predict", json=body)
        return JSONResponse(answer.json(), status_code=answer.status_code)

    async def mirror_log(_request: Request) -> JSONResponse:
        await asyncio.gather(*state["mirrored"])
        return JSONResponse(state["log"])

    return Starlette(routes=[Route("/predict", predict, methods=["POST"]),
                             Route("/config", configure, methods=["PUT"]),
                             Route("/mirror-log", mirror_log)])


@contextlib.contextmanager
def running(app: Starlette) -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free loopback port; yield its base URL; always stop."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the uvicorn server did not start within 30 s")
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


class Cluster:
    """Real servers for ``versions`` behind one router: a rollout target (lesson 06).

    ``concurrency`` requests are in flight at once (real users do not wait for each other), so
    a step of slow requests takes about its latency times ``n_requests / concurrency``.
    Use it as a context manager; every server stops when the block ends, even on an error::

        with serving.Cluster(population, versions) as cluster:
            timeline = rollout.Canary(...).run(cluster, "v1", "v2", rng)
    """

    def __init__(self, population: traffic.Population, versions: Sequence[traffic.Version],
                 seed: int = 0, concurrency: int = 8) -> None:
        if int(concurrency) != concurrency or concurrency < 1:
            raise ValueError(f"concurrency (requests in flight at once) must be a whole number "
                             f">= 1, got {concurrency}.")
        self.concurrency = int(concurrency)
        self.population = population
        self.versions = {v.name: v for v in versions}
        if len(self.versions) != len(versions) or not versions:
            raise ValueError("give at least one version, with distinct names.")
        self.seed = seed
        self.urls: dict[str, str] = {}
        self.router_url: str | None = None
        self._stack: contextlib.ExitStack | None = None
        self._client: httpx.Client | None = None

    def __enter__(self) -> Cluster:
        stack = contextlib.ExitStack()
        try:
            for index, (name, version) in enumerate(self.versions.items()):
                self.urls[name] = stack.enter_context(running(model_app(
                    version, self.seed + index, self.population)))
            self.router_url = stack.enter_context(running(router_app(self.urls)))
            self._client = stack.enter_context(httpx.Client(timeout=10.0))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self._client = None, None

    def _http(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("the cluster is not running: use it in a `with` block.")
        return self._client

    def health(self, name: str) -> bool:
        """Ask version ``name``'s server: ``GET /health`` answered 200."""
        if name not in self.versions:
            raise ValueError(f"unknown version {name!r}; deployed versions are "
                             f"{sorted(self.versions)}.")
        return self._http().get(f"{self.urls[name]}/health").status_code == 200

    def serve(self, weights: Mapping[str, float], n_requests: int, rng: np.random.Generator, *,
              salt: str = "rollout", mirror_to: str | None = None) -> traffic.Served:
        """Set the router's weights, send ``n_requests`` real requests, score the answers."""
        if int(n_requests) != n_requests or n_requests < 1:
            raise ValueError(f"n_requests must be a whole number >= 1 (empty traffic cannot be "
                             f"analysed), got {n_requests}.")
        http = self._http()
        reply = http.put(f"{self.router_url}/config",
                         json={"weights": dict(weights), "salt": salt, "mirror_to": mirror_to})
        if reply.status_code != 200:
            raise ValueError(f"the router refused the weights {dict(weights)}: {reply.text}")
        names = tuple(weights)
        users = rng.integers(0, self.population.n_users, size=int(n_requests))

        def send(position: int) -> tuple[int, dict, float]:
            user = int(users[position])
            started = time.perf_counter()
            response = http.post(f"{self.router_url}/predict",
                                 json={"request": position,
                                       "user_id": int(self.population.user_ids[user]),
                                       "features": self.population.X[user].tolist()})
            return (response.status_code, response.json(),
                    1000 * (time.perf_counter() - started))

        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            sent = list(pool.map(send, range(users.size)))
        served = self._served(names, users, [(status, body) for status, body, _ in sent],
                              np.array([milliseconds for _, _, milliseconds in sent]))
        if mirror_to is None:
            return served
        log = sorted(http.get(f"{self.router_url}/mirror-log").json(),
                     key=lambda entry: entry["request"])
        shadow = self._served((mirror_to,), users,
                              [(entry["status"], entry) for entry in log], np.full(users.size,
                                                                                   np.nan))
        return traffic.Served(**{**served.__dict__, "shadow": shadow})

    def _served(self, names: tuple[str, ...], users: np.ndarray, answers: list,
                latency: np.ndarray) -> traffic.Served:
        error = np.array([status != 200 for status, _ in answers])
        version = np.array([names.index(body["version"]) for _, body in answers], dtype=np.int8)
        prediction = np.array([body.get("prediction", -1) if status == 200 else -1
                               for status, body in answers], dtype=np.int64)
        labels = self.population.y
        correct = None if labels is None else (prediction == labels[users]) & ~error
        return traffic.Served(names, version, users, prediction, correct, latency, error,
                              self.population.user_ids)
