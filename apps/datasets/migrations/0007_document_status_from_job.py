from django.db import migrations


class Migration(migrations.Migration):
    """A document's status and error message are read from its extraction or import job (Document.status): the stored
    copies stayed "Waiting" when the job crashed, was reaped or was cancelled. Nothing to carry over: the job holds
    the same readable error the copy held, and a document without a job is judged from what it holds."""

    dependencies = [
        ("datasets", "0006_qapair_edited"),
    ]

    operations = [
        migrations.RemoveField(model_name="document", name="error_message"),
        migrations.RemoveField(model_name="document", name="status"),
    ]
