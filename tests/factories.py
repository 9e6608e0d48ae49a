import factory

from apps.accounts.models import API_TOKEN_VISIBLE_CHARS, ApiToken, User, api_token_hash, api_token_secret_new


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "correct horse battery staple")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class ApiTokenFactory(factory.django.DjangoModelFactory):
    """A personal API token; pass `secret=` to know the token, as only its hash is stored."""

    class Meta:
        model = ApiToken

    class Params:
        secret = factory.LazyFunction(api_token_secret_new)

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"token {n}")
    prefix = factory.LazyAttribute(lambda o: o.secret[:API_TOKEN_VISIBLE_CHARS])
    key_hash = factory.LazyAttribute(lambda o: api_token_hash(o.secret))
