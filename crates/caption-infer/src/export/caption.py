#!/usr/bin/env python3
"""Caption images in PyTorch with a model exported by caption (`cargo xtask export --pytorch DIR`).

This folder holds everything needed, nothing of caption itself:
  model.safetensors  the weights under the PyTorch original's names (`CNNtoRNN().state_dict()`);
                     its metadata repeats config.json and the vocabulary
  config.json        sizes, image size and normalisation, transform_input, max_length, specials
  vocab.json         the words by id (itos)
  tokenizer.json     the same vocabulary as a Hugging Face tokenizer file
  caption.py         this script: the original's classes, the weights loaded strictly, its
                     greedy `caption_image`

Needs torch, torchvision, safetensors and pillow. Prints `path<TAB>caption` per image (the
tokens joined by spaces, <SOS> and <EOS> left out).

Usage: python caption.py IMAGE... [--device cpu|cuda]
In Python: model, itos, config = load(folder); caption(model, itos, config, "photo.jpg")
"""

import argparse
import json
from pathlib import Path

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as transforms
from PIL import Image
from safetensors.torch import load_file

HERE = Path(__file__).resolve().parent


# The original's classes (aladdinpersson's PyTorch image-captioning tutorial), with torchvision's
# `weights=None` in place of the removed `pretrained=True` (the weights come from the file).
class EncoderCNN(nn.Module):
    def __init__(self, embed_size, train_CNN=False):
        super(EncoderCNN, self).__init__()
        self.train_CNN = train_CNN
        self.inception = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=False)
        self.inception.fc = nn.Linear(self.inception.fc.in_features, embed_size)
        self.relu = nn.ReLU()
        self.times = []
        self.dropout = nn.Dropout(0.5)

    def forward(self, images):
        features = self.inception(images)
        return self.dropout(self.relu(features))


class DecoderRNN(nn.Module):
    def __init__(self, embed_size, hidden_size, vocab_size, num_layers):
        super(DecoderRNN, self).__init__()
        self.embed = nn.Embedding(vocab_size, embed_size)
        self.lstm = nn.LSTM(embed_size, hidden_size, num_layers)
        self.linear = nn.Linear(hidden_size, vocab_size)
        self.dropout = nn.Dropout(0.5)

    def forward(self, features, captions):
        embeddings = self.dropout(self.embed(captions))
        embeddings = torch.cat((features.unsqueeze(0), embeddings), dim=0)
        hiddens, _ = self.lstm(embeddings)
        outputs = self.linear(hiddens)
        return outputs


class CNNtoRNN(nn.Module):
    def __init__(self, embed_size, hidden_size, vocab_size, num_layers):
        super(CNNtoRNN, self).__init__()
        self.encoderCNN = EncoderCNN(embed_size)
        self.decoderRNN = DecoderRNN(embed_size, hidden_size, vocab_size, num_layers)

    def forward(self, images, captions):
        features = self.encoderCNN(images)
        outputs = self.decoderRNN(features, captions)
        return outputs

    def caption_image(self, image, vocabulary, max_length=50):
        result_caption = []

        with torch.no_grad():
            x = self.encoderCNN(image).unsqueeze(0)
            states = None

            for _ in range(max_length):
                hiddens, states = self.decoderRNN.lstm(x, states)
                output = self.decoderRNN.linear(hiddens.squeeze(0))
                predicted = output.argmax(1)
                result_caption.append(predicted.item())
                x = self.decoderRNN.embed(predicted).unsqueeze(0)

                if vocabulary.itos[predicted.item()] == "<EOS>":
                    break

        return [vocabulary.itos[idx] for idx in result_caption]


class Vocabulary:
    """What `caption_image` needs of the original's Vocabulary: itos."""

    def __init__(self, words):
        self.itos = dict(enumerate(words))
        self.stoi = {word: index for index, word in enumerate(words)}


def load(folder=HERE, device="cpu"):
    """The exported model (eval mode, strictly loaded), its vocabulary and config.json."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    words = json.loads((folder / "vocab.json").read_text())
    assert config["architecture"] == "CNNtoRNN", config["architecture"]
    assert len(words) == config["vocab_size"], (len(words), config["vocab_size"])
    model = CNNtoRNN(config["embed_size"], config["hidden_size"], config["vocab_size"], config["num_layers"])
    model.encoderCNN.inception.transform_input = config["transform_input"]
    model.load_state_dict(load_file(str(folder / "model.safetensors")), strict=True)
    return model.to(device).eval(), Vocabulary(words), config


def transform(config):
    """The eval transform the model was trained with."""
    size = config["image_size"]
    return transforms.Compose(
        [
            transforms.Resize((size, size)),
            transforms.ToTensor(),
            transforms.Normalize(config["normalize_mean"], config["normalize_std"]),
        ]
    )


def caption(model, vocabulary, config, path, device="cpu"):
    """The tokens of the original's greedy caption of the image at `path`, <PAD>, <SOS> and <EOS>
    left out."""
    image = transform(config)(Image.open(path).convert("RGB")).unsqueeze(0).to(device)
    words = model.caption_image(image, vocabulary, max_length=config["max_length"])
    return [word for word in words if word not in ("<PAD>", "<SOS>", "<EOS>")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    model, vocabulary, config = load(HERE, args.device)
    for path in args.images:
        print(f"{path}\t{' '.join(caption(model, vocabulary, config, path, args.device))}")


if __name__ == "__main__":
    main()
