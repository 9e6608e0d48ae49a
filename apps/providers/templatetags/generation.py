from django import template

from apps.providers.forms import GenerationForm

register = template.Library()


@register.simple_tag(takes_context=True)
def generation_form(context, dataset):
    """The generation options form for `dataset`: the view's own `generate_form` when it passed one (say, to
    show errors), else a fresh one listing the signed-in user's providers."""
    form = context.get("generate_form")
    if isinstance(form, GenerationForm):
        return form
    return GenerationForm(user=context["request"].user, dataset=dataset)
