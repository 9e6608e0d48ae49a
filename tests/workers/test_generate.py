from workers.generate import extractive_pairs, question_for


def test_it_turns_definitions_into_questions():
    assert question_for("The capital of the valley is Eldhavn.") == "What is the capital of the valley?"
    assert question_for("The valley has four towns: A, B and C.") == "What does the valley have?"
    assert question_for("Little Fen is known for its gardens.") == "What is Little Fen?"
    assert question_for("The glass moth appears only in August.") == "What does the text say about the glass moth?"


def test_it_makes_one_pair_per_distinct_question_in_order():
    chunks = ["The capital is Eldhavn. The capital is Eldhavn. Short one.", "The lake is deep and cold."]
    pairs = extractive_pairs(chunks)
    assert [(p.question, p.answer, p.chunk_index) for p in pairs] == [
        ("What is the capital?", "The capital is Eldhavn.", 0),
        ("What is the lake?", "The lake is deep and cold.", 1),
    ]
    assert len(extractive_pairs(chunks, max_pairs=1)) == 1
