"""Planted secrets and look-alikes, as data, for the redaction tests and the end-to-end scan.

Every secret is fake but well-formed: built from a fixed seed in its provider's format and
length, so a test run is reproducible and nothing here unlocks anything. Each sits inside
realistic text: a prompt, a Bash command, `env` or `cat .env` output, a stack trace, JSON.

    PLANTED                 one PlantedSecret(kind, value, text) per planted secret
    FALSE_POSITIVE_SAMPLES  ordinary code and logs that redaction must leave byte for byte
    all_secret_values()     every planted value, for scanning what ends up on disk
"""

from __future__ import annotations

import base64
import json
import random
import string
from collections.abc import Callable
from dataclasses import dataclass

ALNUM = string.ascii_letters + string.digits
B64URL = ALNUM + "-_"
B64 = ALNUM + "+/"
UPPER_ALNUM = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"
PASSWORD_CHARS = ALNUM + "!%^*-_+=~"
SECRET = "{secret}"  # where the value goes in a context template


@dataclass(frozen=True)
class PlantedSecret:
    """A secret value, the placeholder kind it must become, and the text it is planted in."""

    kind: str
    value: str
    text: str


def _chars(rng: random.Random, alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def _random_like(rng: random.Random, alphabet: str, n: int) -> str:
    """A string of `alphabet` with every character class the alphabet offers, as real tokens have."""
    wanted = [test for test in (str.isupper, str.islower, str.isdigit) if any(test(c) for c in alphabet)]
    while True:
        value = _chars(rng, alphabet, n)
        if all(any(test(c) for c in value) for test in wanted):
            return value


def _password(rng: random.Random, n: int = 16) -> str:
    while True:
        value = _chars(rng, PASSWORD_CHARS, n)
        if any(c.isdigit() for c in value) and any(c.isalpha() for c in value) and any(c in "!%^*+=~" for c in value):
            return value


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# --- one generator per format ------------------------------------------------------------


def anthropic(rng: random.Random, flavour: str = "api03") -> str:
    return f"sk-ant-{flavour}-{_random_like(rng, B64URL, 93)}AA"


def openai_project(rng: random.Random) -> str:
    return f"sk-proj-{_random_like(rng, B64URL, 156)}"


def openai_legacy(rng: random.Random) -> str:
    return f"sk-{_random_like(rng, ALNUM, 20)}T3BlbkFJ{_random_like(rng, ALNUM, 20)}"


def openai_service(rng: random.Random) -> str:
    return f"sk-svcacct-{_random_like(rng, B64URL, 120)}"


def github_classic(rng: random.Random, prefix: str = "ghp") -> str:
    return f"{prefix}_{_random_like(rng, ALNUM, 36)}"


def github_fine_grained(rng: random.Random) -> str:
    return f"github_pat_11{_random_like(rng, UPPER_ALNUM, 20)}_{_random_like(rng, ALNUM, 59)}"


def gitlab(rng: random.Random) -> str:
    return f"glpat-{_random_like(rng, B64URL, 20)}"


def slack_bot(rng: random.Random) -> str:
    return f"xoxb-{_chars(rng, string.digits, 12)}-{_chars(rng, string.digits, 13)}-{_random_like(rng, ALNUM, 24)}"


def slack_user(rng: random.Random) -> str:
    digits = "-".join(_chars(rng, string.digits, 12) for _ in range(3))
    return f"xoxp-{digits}-{_chars(rng, HEX, 32)}"


def slack_webhook(rng: random.Random) -> str:
    team, bot = _random_like(rng, UPPER_ALNUM, 8), _random_like(rng, UPPER_ALNUM, 10)
    return f"https://hooks.slack.com/services/T{team}/B{bot}/{_random_like(rng, ALNUM, 24)}"


def stripe(rng: random.Random, prefix: str = "sk_live") -> str:
    return f"{prefix}_51{_random_like(rng, ALNUM, 97)}"


def stripe_webhook(rng: random.Random) -> str:
    return f"whsec_{_random_like(rng, ALNUM, 32)}"


def google_api(rng: random.Random) -> str:
    return f"AIza{_random_like(rng, B64URL, 35)}"


def aws_key_id(rng: random.Random, prefix: str = "AKIA") -> str:
    return prefix + _chars(rng, string.ascii_uppercase + "234567", 16)


def aws_secret(rng: random.Random) -> str:
    return _random_like(rng, B64, 40)


def jwt(rng: random.Random) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    claims = {"sub": str(rng.randrange(10**6)), "name": "Dev User", "iat": 1716239022, "exp": 1716242622}
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"


def opaque_token(rng: random.Random) -> str:
    return _random_like(rng, ALNUM, 40)


def basic_credentials(rng: random.Random) -> str:
    return base64.b64encode(f"deploy:{_password(rng)}".encode()).decode()


def password(rng: random.Random) -> str:
    return _password(rng)


def password_with_at(rng: random.Random) -> str:
    return f"{_password(rng, 8)}@{_password(rng, 8)}"


def hex_secret(rng: random.Random, n: int = 64) -> str:
    return _chars(rng, HEX, n)


def django_secret(rng: random.Random) -> str:
    return "django-insecure-" + _random_like(rng, string.ascii_lowercase + string.digits + "!@#$%^&*(-_=+)", 50)


def google_client_secret(rng: random.Random) -> str:
    return f"GOCSPX-{_random_like(rng, B64URL, 28)}"


def kube_client_key(rng: random.Random) -> str:
    """kubeconfig's client-key-data: a whole PEM key, base64-encoded onto one line."""
    return base64.b64encode((rsa_pem(rng) + "\n").encode()).decode()


def npm(rng: random.Random) -> str:
    return f"npm_{_random_like(rng, ALNUM, 36)}"


def pypi(rng: random.Random) -> str:
    return f"pypi-AgEIcHlwaS5vcmc{_random_like(rng, B64URL, 150)}"


def huggingface(rng: random.Random) -> str:
    return f"hf_{_random_like(rng, string.ascii_letters, 34)}"


def _pem_body(rng: random.Random, head: str, lines: int, width: int = 64, sep: str = "\n") -> str:
    body = head + base64.b64encode(rng.randbytes(lines * width * 3 // 4)).decode()
    return sep.join(body[i : i + width] for i in range(0, lines * width, width))


def rsa_pem(rng: random.Random) -> str:
    body = _pem_body(rng, "MIIEowIBAAKCAQEA", 25)
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


def openssh_key(rng: random.Random) -> str:
    body = _pem_body(rng, "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW", 6, 70)
    return f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----"


def pkcs8_escaped(rng: random.Random) -> str:
    """A PKCS#8 key as it appears inside a JSON string: newlines written as \\n."""
    body = _pem_body(rng, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", 20, sep="\\n")
    return f"-----BEGIN PRIVATE KEY-----\\n{body}\\n-----END PRIVATE KEY-----\\n"


def ec_truncated(rng: random.Random) -> str:
    """An EC key whose END line was cut off."""
    return "-----BEGIN EC PRIVATE KEY-----\n" + _pem_body(rng, "MHcCAQEEI", 3)


# --- where they are planted: (kind, generator, seed, context template) --------------------

_Spec = tuple[str, Callable[[random.Random], str], str]

_SPECS: list[_Spec] = [
    ("anthropic_key", anthropic, "here is my key {secret}, why does it fail with 401 invalid x-api-key?"),
    (
        "anthropic_key",
        anthropic,
        "$ env | sort\nANTHROPIC_API_KEY={secret}\nHOME=/home/dev\nLANG=en_US.UTF-8\nPATH=/usr/local/bin:/usr/bin\n",
    ),
    (
        "anthropic_key",
        lambda r: anthropic(r, "admin01"),
        '{\n  "apiKey": "{secret}",\n  "model": "claude-sonnet-4-5",\n  "maxTokens": 4096\n}',
    ),
    (
        "anthropic_key",
        anthropic,
        "Traceback (most recent call last):\n  File \"/app/main.py\", line 12, in <module>\n    client = Anthropic(api_key='{secret}')\nanthropic.AuthenticationError: Error code: 401",
    ),
    ("openai_key", openai_project, 'curl https://api.openai.com/v1/models -H "Authorization: Bearer {secret}"'),
    (
        "openai_key",
        openai_legacy,
        'client = OpenAI(api_key="{secret}")\nresp = client.chat.completions.create(model="gpt-4o", max_tokens=512)',
    ),
    ("openai_key", openai_service, "$ cat .env\nOPENAI_API_KEY={secret}\nDEBUG=true\nPORT=8000\n"),
    ("github_token", github_classic, "git clone https://{secret}@github.com/acme/infra.git /tmp/infra"),
    (
        "github_token",
        lambda r: github_classic(r, "gho"),
        "$ gh auth status --show-token\ngithub.com\n  ✓ Logged in to github.com account dev (keyring)\n  ✓ Token: {secret}\n  ✓ Token scopes: 'gist', 'read:org', 'repo'",
    ),
    ("github_token", github_fine_grained, "export GITHUB_TOKEN={secret}\nnpm publish --access public"),
    (
        "github_token",
        lambda r: github_classic(r, "ghs"),
        "remote: Invalid username or token.\nfatal: Authentication failed for 'https://x-access-token:{secret}@github.com/acme/app.git/'",
    ),
    ("gitlab_token", gitlab, "git remote add origin https://oauth2:{secret}@gitlab.com/acme/backend.git"),
    ("gitlab_token", gitlab, 'variables:\n  GITLAB_TOKEN: "{secret}"\n  DOCKER_DRIVER: overlay2'),
    (
        "slack_token",
        slack_bot,
        'from slack_sdk import WebClient\nclient = WebClient(token="{secret}")\nclient.chat_postMessage(channel="#deploys", text="done")',
    ),
    ("slack_token", slack_user, "my slack user token is {secret} and chat.postMessage returns not_authed, why?"),
    (
        "slack_webhook",
        slack_webhook,
        "curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"deploy done\"}' {secret}",
    ),
    ("stripe_key", stripe, 'import stripe\nstripe.api_key = "{secret}"\nstripe.Charge.create(amount=2000, currency="usd")'),
    (
        "stripe_key",
        lambda r: stripe(r, "sk_test"),
        "STRIPE_SECRET_KEY={secret}\nSTRIPE_PUBLISHABLE_KEY=pk_test_TYooMQauvdEDq54NiTphI7jx\n",
    ),
    ("stripe_key", lambda r: stripe(r, "rk_live"), '{"stripe": {"restrictedKey": "{secret}", "currency": "eur"}}'),
    ("stripe_key", stripe_webhook, "Webhook signing secret: {secret}\nListening for events on http://localhost:4242/webhook"),
    ("google_api_key", google_api, "GET https://maps.googleapis.com/maps/api/geocode/json?address=Berlin&key={secret} -> 200 OK"),
    (
        "google_api_key",
        google_api,
        'const firebaseConfig = {\n  apiKey: "{secret}",\n  authDomain: "acme-app.firebaseapp.com",\n  projectId: "acme-app",\n};',
    ),
    ("aws_access_key_id", aws_key_id, "$ cat ~/.aws/credentials\n[default]\naws_access_key_id = {secret}\nregion = eu-west-1\n"),
    (
        "aws_access_key_id",
        lambda r: aws_key_id(r, "ASIA"),
        '{\n    "Credentials": {\n        "AccessKeyId": "{secret}",\n        "Expiration": "2024-05-21T12:00:00Z"\n    }\n}',
    ),
    ("aws_secret_key", aws_secret, "[default]\naws_access_key_id = AKIA2EXAMPLE7QRSTUVW\naws_secret_access_key = {secret}\n"),
    ("aws_secret_key", aws_secret, '{"Credentials": {"SecretAccessKey": "{secret}", "SessionToken": "IQoJb3JpZ2luX2Vj"}}'),
    ("aws_secret_key", aws_secret, "AWS_DEFAULT_REGION=us-east-1\nAWS_SECRET_ACCESS_KEY={secret}\nAWS_PAGER=\n"),
    (
        "aws_secret_key",
        aws_secret,
        "$ aws configure\nAWS Access Key ID [None]: AKIA2EXAMPLE7QRSTUVW\nAWS Secret Access Key [None]: {secret}\nDefault region name [None]: eu-central-1",
    ),
    ("jwt", jwt, "decode this token {secret} and tell me why the API says it expired"),
    ("jwt", jwt, "> GET /api/me HTTP/1.1\n> Host: localhost:3000\n> Authorization: Bearer {secret}\n< HTTP/1.1 401 Unauthorized"),
    ("bearer_token", opaque_token, 'curl -sS https://api.acme.dev/v2/orders -H "Authorization: Bearer {secret}" | jq .'),
    (
        "bearer_token",
        opaque_token,
        'resp = requests.get(url, headers={"Authorization": "Bearer {secret}", "Accept": "application/json"})',
    ),
    ("bearer_token", opaque_token, "DEBUG urllib3: > Authorization: Token {secret}\nDEBUG urllib3: < 403 Forbidden"),
    (
        "basic_auth",
        basic_credentials,
        "curl -v https://registry.acme.dev/v2/_catalog\n> Authorization: Basic {secret}\n< HTTP/2 200",
    ),
    (
        "url_password",
        password,
        'sqlalchemy.exc.OperationalError: (psycopg2.OperationalError) connection to server at "db.internal" (10.0.3.7), port 5432 failed\nDATABASE_URL=postgresql://app_user:{secret}@db.internal:5432/app',
    ),
    ("url_password", password, "Error 111 connecting to redis://:{secret}@cache.internal:6379/0. Connection refused."),
    (
        "url_password",
        password,
        'MONGO_URI="mongodb+srv://admin:{secret}@cluster0.ab1cd.mongodb.net/?retryWrites=true&w=majority"',
    ),
    ("url_password", password_with_at, "pika.exceptions.AMQPConnectionError: amqp://guest:{secret}@rabbitmq:5672/%2F"),
    ("private_key", rsa_pem, "$ cat ~/.ssh/id_rsa\n{secret}\n$ chmod 600 ~/.ssh/id_rsa"),
    (
        "private_key",
        openssh_key,
        "Here is the deploy key, add it to the server:\n\n{secret}\n\nthen run ssh -i deploy_key app@10.0.0.5",
    ),
    (
        "private_key",
        pkcs8_escaped,
        '{"type": "service_account", "project_id": "acme-prod", "private_key_id": "4f1c2a9e", "private_key": "{secret}", "client_email": "ci@acme-prod.iam.gserviceaccount.com"}',
    ),
    ("private_key", ec_truncated, "$ cat certs/server.key\n{secret}\n\n$ openssl ec -in certs/server.key -noout\nread EC key"),
    ("private_key", ec_truncated, "Tool output (truncated):\n{secret}"),
    ("password", password, "$ cat .env\nDB_HOST=db.internal\nDB_USER=app\nDB_PASSWORD={secret}\nDB_PORT=5432\n"),
    ("password", password, "database:\n  host: db.internal\n  user: app\n  password: {secret}\n  pool_size: 10"),
    ("password", password, "python manage.py createsuperuser --username admin --password={secret} --noinput"),
    ("password", password, "the admin password is {secret}, can you log in and check the settings page?"),
    ("password", password, "curl -u admin:{secret} https://jenkins.acme.dev/api/json"),
    ("password", password, '{"db_user": "app", "db_password": "{secret}", "db_name": "orders"}'),
    ("password", password, "mysql --host=db.internal --user=root --password {secret} orders < dump.sql"),
    ("secret", django_secret, "# settings.py\nDEBUG = False\nSECRET_KEY = '{secret}'\nALLOWED_HOSTS = ['acme.dev']"),
    (
        "secret",
        google_client_secret,
        '{"web": {"client_id": "1234-abc.apps.googleusercontent.com", "client_secret": "{secret}", "redirect_uris": ["http://localhost"]}}',
    ),
    ("secret", opaque_token, "stringData:\n  webhook_secret: {secret}\n  region: eu-west-1"),
    ("secret", opaque_token, "use the signing secret {secret} for the webhook, the old one was rotated"),
    ("secret", opaque_token, "curl https://api.acme.dev/v1/items -H 'x-api-key: {secret}'"),
    ("secret", hex_secret, "export SENTRY_AUTH_TOKEN={secret}\nsentry-cli releases new 1.4.2"),
    (
        "secret",
        kube_client_key,
        "users:\n- name: admin@prod\n  user:\n    client-certificate: /home/dev/.minikube/profiles/prod/client.crt\n    client-key-data: {secret}\n",
    ),
    ("npm_token", npm, "$ cat ~/.npmrc\n//registry.npmjs.org/:_authToken={secret}\nalways-auth=true"),
    ("pypi_token", pypi, "[pypi]\nusername = __token__\npassword = {secret}\n"),
    ("huggingface_token", huggingface, "huggingface-cli login --token {secret} --add-to-git-credential"),
]


def _plant(index: int, spec: _Spec) -> PlantedSecret:
    kind, generate, template = spec
    value = generate(random.Random(f"session-search-corpus-{index}-{kind}"))
    return PlantedSecret(kind, value, template.replace(SECRET, value))


PLANTED: list[PlantedSecret] = [_plant(i, spec) for i, spec in enumerate(_SPECS)]


def all_secret_values() -> list[str]:
    """Every planted secret value, for scanning an index for leaks."""
    return [planted.value for planted in PLANTED]


FALSE_POSITIVE_SAMPLES: list[str] = [
    # model calls and token accounting
    'resp = client.messages.create(model="claude-sonnet-4-5", max_tokens=4096, messages=msgs)\ntoken_count = len(tokens)',
    '"usage": {"input_tokens": 523, "cache_read_input_tokens": 12000, "output_tokens": 88}',
    '{"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "model_max_length": 4096}',
    "tokens_used: 1234\nmax_tokens: 8192\ntoken_budget: 200000",
    # databases and data keys
    "id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)\nuser = models.ForeignKey(User, on_delete=models.CASCADE)",
    "table = dynamodb.create_table(TableName='orders', KeySchema=[{'AttributeName': 'pk', 'KeyType': 'HASH'}])\nsort_key = 'created_at'",
    "rows.sort(key=lambda row: row[1])\nfor key, value in mapping.items():\n    print(key, value)",
    '"keys": ["id", "name", "email"], "sort_key": "name", "partition_key": "tenant_id"',
    "Cache key: user:42:profile (hit ratio 0.93)",
    "KEYBOARD=us\nKEYMAP=us\nXKB_DEFAULT_LAYOUT=us",
    # auth code that holds no secret
    "def authenticate(token: str) -> bool:\n    if not token:\n        return False\n    return verify_token(token, key=settings.SECRET_KEY)",
    'password = request.form["password"]\napi_key = os.environ["OPENAI_API_KEY"]\ntoken = os.getenv("GITHUB_TOKEN")',
    'headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}',
    'curl -H "Authorization: Bearer $TOKEN" https://api.github.com/user\nexport GITHUB_TOKEN=$(gh auth token)',
    "database:\n  password: ${DB_PASSWORD}\n  api_key: <your-api-key>\n  token: ${{ secrets.GITHUB_TOKEN }}",
    "OPENAI_API_KEY=sk-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\nSECRET_KEY=changeme\nAPI_TOKEN=your-token-here",
    "password_reset_url = \"https://acme.dev/account/password/reset\"\nPASSWORD_MIN_LENGTH = 12\nAUTH_PASSWORD_VALIDATORS = [{'NAME': 'django.contrib.auth.password_validation.MinimumLengthValidator'}]",
    "Reset your password from the account page. The token expired, so refresh the API key in settings and try again.",
    "The Authorization header must carry a Bearer token; a missing password gives 401, a wrong key gives 403.",
    "secretKeyRef:\n  name: db-secret\n  key: password\nsecretName: tls-cert\ntoken_type: Bearer\ngrant_type=client_credentials",
    "auth: user alice logged in from 10.0.0.7\nAuthor: Dev User <dev@acme.dev>\nauthority: login.microsoftonline.com",
    "const onKeyDown = (event) => {\n  if (event.key === 'Enter') submit();\n};\n<li key={item.id}>{item.name}</li>",
    "import secrets\nnonce = secrets.token_hex(32)\ntokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
    "git config --global credential.helper store\nssh-keygen -t ed25519 -C dev@acme.dev -f ~/.ssh/id_ed25519",
    "public_key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl dev@laptop",
    "key_path: certs/server.key\ntoken_file: /var/run/secrets/kubernetes.io/serviceaccount/token\nGOOGLE_APPLICATION_CREDENTIALS=/home/dev/.config/gcloud/app.json",
    # ids, hashes and digests
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8\nAuthor: Dev User <dev@acme.dev>\n\n    Fix token refresh race (a1b2c3d)\n\nMerge: 1d8f3c2 7e4a9b0",
    "$ git log --oneline -3\n3f2a9c1 Rotate signing key handling\n8b7e6d5 Add password reset flow\nc0ffee1 Bump version to 2.3.1",
    "2024-05-21T10:15:32.118Z INFO request_id=9f86d081884c7d659a2feaa0c55ad015 session=3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f status=200",
    '{"sessionId": "6b1f2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d", "parentUuid": "a3c9e1f2-0b4d-4c6e-8f1a-2b3c4d5e6f70", "requestId": "req_011CT7qX2y"}',
    '"resolved": "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",\n"integrity": "sha512-XI5MPzVNApjAyhQzphX8BkmKsKUxD4LdyK24iZeQ8imMRC8GwKyq0Vr3ogz2zmtSUfWaTs/7emSNpZINgLpeX8A0yOESPfZzn0bVHcQdjRy1dkGQ=="',
    "docker pull ghcr.io/acme/api@sha256:4bc453b53cb3d914b45f4b250294236adba2c0e09ff6f03793949e7e39fd4cc1\nDigest: sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "d41d8cd98f00b204e9800998ecf8427e  empty.txt\n507f1f77bcf86cd799439011 ObjectId\nspan_id=00f067aa0ba902b7 trace_id=4bf92f3577b34da6a3ce929d0e0e4736",
    # paths, URLs, versions
    '  File "/home/dev/.venv/lib/python3.11/site-packages/httpx/_client.py", line 1014, in send\n    raise ConnectError(msg) from exc\nhttpx.ConnectError: [Errno 111] Connection refused',
    "See https://github.com/acme/app/blob/9fceb02d0ae598e95dc970b74767f19372d61af8/src/auth/token.py#L42 and https://api.acme.dev/v1/tokens?page=2&per_page=50",
    "Successfully installed anthropic-0.34.2 httpx-0.27.0 pydantic-2.8.2 tokenizers-0.19.1 torch-2.3.1+cu121",
    "$ ls ~/.aws ~/.ssh\ncredentials config\nid_ed25519 id_ed25519.pub known_hosts\n$ cat ~/.ssh/id_ed25519.pub\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl dev@laptop",
    "postgresql://localhost:5432/app and redis://cache.internal:6379/0 and git@github.com:acme/app.git",
    "env:\n  PATH=/usr/local/bin:/usr/bin\n  HOME=/home/dev\n  PWD=/work/main\n  SSH_AUTH_SOCK=/tmp/ssh-XXXXabcd/agent.1234\n  TERM=xterm-256color",
    "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==",
    "getUserAuthTokenFromSessionStorage() calls AbstractTokenizerFactoryBean.create(); see PasswordHasherRegistry and KeyboardInterruptHandler",
]
